"""What looks like a secret, and how a command line is kept without one.

One rule, used wherever aicache keeps words from a command line:

- A word *looks like a secret* when it carries a known credential prefix
  (``sk-``, ``sk-ant-``, ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_``,
  ``github_pat_``, ``xox?-``, ``AKIA``/``ASIA``, ``AIza``, ``glpat-``,
  ``hf_``, ``npm_``, ``pypi-``, a JWT ``eyJ...``), or holds a random-looking
  run: 16 or more letters, digits and ``+/=`` between separators ``-_.``,
  mixing letters and digits with the spread of characters a random key has
  (at least 3.5 bits per character; a path or URL is not one). Normalised
  tokens never keep such a word.
- A cache entry's argv keeps a *secret value* only as ``<secret:HASH>``
  (the first 12 hex digits of its HMAC-SHA256 under the home's random key,
  :mod:`aicache.local.home_key`, so a guess cannot be checked against it
  without that key): the value of a flag whose name
  says it holds one (``--api-key=V``, ``--token V``, ``--password V``, ...),
  a value glued to ``-p`` for the MySQL family (``mysql -pV``), the word
  after ``-p`` (or glued to it) for ``sshpass`` and the container registries'
  ``login`` (``docker login -p V``), the password in ``curl -u user:V``
  (``-uuser:V``, ``--user=user:V``), the value of
  a ``NAME=V`` word whose name says so (``OPENAI_API_KEY=V``), an
  ``Authorization:``-style header (alone, or glued to ``--header=``/``-H``),
  a URL's ``user:password@``, and any word
  that looks like a secret. The cache key is computed from the real argv
  before this, so a hit still matches; only what is stored changes.

This module is on the cache-hit path: standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections import Counter
from collections.abc import Sequence

# Prefixes that credential issuers put on their keys and tokens.
_KNOWN_PREFIX = re.compile(
    r"(?:^|[^A-Za-z0-9])(?:sk-ant-|sk-|gh[pousr]_|github_pat_|xox[a-z]-|AKIA|ASIA|AIza|glpat-"
    r"|hf_|npm_|pypi-|eyJ[A-Za-z0-9_-]{6,}\.)[A-Za-z0-9_\-./+=]{12,}"
)
_KEYLIKE_RUN = re.compile(r"[A-Za-z0-9+/=_.\-]{16,}")
MIN_KEY_PART = 16
MIN_ENTROPY_BITS = 3.5
# Parts of a flag or variable name (split at - and _) that say its value is a secret.
_SECRET_NAME_PARTS = frozenset(
    "key apikey token authtoken accesstoken secret password passwd pass pwd passphrase auth "
    "credential credentials cookie bearer".split()
)
_HEADER = re.compile(
    r"^\s*(?:proxy-)?(?:authorization|x-api-key|api-key|x-auth-token|cookie)\s*:", re.IGNORECASE
)
_URL_USERINFO = re.compile(r"(://[^/\s:@]+:)([^/\s@]+)(@)")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$", re.DOTALL)
_LONG_FLAG = re.compile(r"^(--?[A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$", re.DOTALL)
# Programs whose -p takes the password glued to it (``mysql -pSECRET``).
_GLUED_PASSWORD = frozenset({"mysql", "mysqldump", "mysqladmin", "mariadb", "mariadb-dump"})
# Programs whose -u/--user takes ``user:password`` (also ``-uV`` and ``--user=V``).
_USER_PASSWORD = frozenset({"curl", "http", "https"})
# Programs whose ``-p`` takes the password as its own word (or glued, ``-pV``), and
# the subcommand that must come first (``docker login -p V``; ``None``: any).
_SEPARATE_PASSWORD: dict[str, str | None] = {
    "sshpass": None,
    "docker": "login",
    "podman": "login",
    "nerdctl": "login",
    "buildah": "login",
    "skopeo": "login",
    "helm": "login",
    "oras": "login",
}
# Flags that take an HTTP header, glued to it (``--header=Authorization: ...``, ``-HV``).
_HEADER_FLAG = re.compile(r"^(--header=|-H)(.+)$", re.DOTALL)
MARK = "<secret:"


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _random_run(run: str) -> bool:
    if run.startswith((".", "/")) or "//" in run:
        return False  # a path or a URL, not a key
    # Names built of short parts (x86_64-linux-gnu-gcc-12, a UUID) are not keys;
    # a key has one long random part.
    longest = max(re.split(r"[-_.]", run), key=len)
    if len(longest) < MIN_KEY_PART:
        return False
    has_digit = any(c.isdigit() for c in longest)
    has_letter = any(c.isalpha() for c in longest)
    return has_digit and has_letter and _entropy(longest) >= MIN_ENTROPY_BITS


def looks_like_secret(word: str) -> bool:
    """Whether ``word`` carries a key or token: a known prefix, or a long random-looking run."""
    if _KNOWN_PREFIX.search(word):
        return True
    return any(_random_run(m.group(0)) for m in _KEYLIKE_RUN.finditer(word))


def names_a_secret(name: str) -> bool:
    """Whether a flag or variable name says its value is a secret (``--api-key``, ``TOKEN``)."""
    parts = re.split(r"[-_]+", name.lower().lstrip("-"))
    return any(part in _SECRET_NAME_PARTS for part in parts)


def secret_hash(value: str, key: bytes) -> str:
    """The stored stand-in for a secret value: ``<secret:`` and 12 hex digits of its HMAC.

    ``key`` is the home's key: without it, a guessed value cannot be checked.
    """
    digest = hmac.new(key, value.encode("utf-8", "surrogateescape"), hashlib.sha256)
    return f"{MARK}{digest.hexdigest()[:12]}>"


def redact_word(word: str, key: bytes) -> str:
    """``word`` as stored where a name is kept (a tool): its hash when it looks like a secret."""
    return secret_hash(word, key) if looks_like_secret(word) else word


def redact_argv(argv: Sequence[str], key: bytes) -> tuple[str, ...]:
    """``argv`` as a cache entry stores it: every secret value replaced by its hash.

    The first word (the program) is kept unless it looks like a secret itself.
    """
    kept: list[str] = []
    program = argv[0].rsplit("/", 1)[-1] if argv else ""
    value_is_secret = False
    for index, word in enumerate(argv):
        if value_is_secret:
            kept.append(secret_hash(word, key))
            value_is_secret = False
            continue
        if index > 1 and program in _USER_PASSWORD and argv[index - 1] in ("-u", "--user"):
            kept.append(_user_password(word, key))
            continue
        if index == 0:
            kept.append(redact_word(word, key))
            continue
        if word.startswith("-p") and _takes_separate_password(program, argv[1:index]):
            kept.append("-p" + secret_hash(word[2:], key) if len(word) > 2 else word)
            value_is_secret = len(word) == 2
            continue
        redacted, value_is_secret = _redact_word(word, program, key)
        kept.append(redacted)
    return tuple(kept)


def _user_password(word: str, key: bytes) -> str:
    """``user:password`` with the password hashed (a bare user stays)."""
    user, colon, password = word.partition(":")
    return user + colon + secret_hash(password, key) if colon else word


def _takes_separate_password(program: str, before: Sequence[str]) -> bool:
    """Whether ``-p`` here takes a password (``before``: the words after the program)."""
    if program not in _SEPARATE_PASSWORD:
        return False
    subcommand = _SEPARATE_PASSWORD[program]
    return subcommand is None or subcommand in before


def _redact_word(word: str, program: str, key: bytes) -> tuple[str, bool]:
    """The word as stored, and whether the next word is a secret flag's value."""
    if _HEADER.match(word):
        name, _, value = word.partition(":")
        return f"{name}: {secret_hash(value.strip(), key)}", False
    header = _HEADER_FLAG.match(word)
    if header and _HEADER.match(header.group(2)):
        return header.group(1) + _redact_word(header.group(2), program, key)[0], False
    if program in _USER_PASSWORD:
        if word.startswith("--user="):
            return "--user=" + _user_password(word[len("--user=") :], key), False
        if word.startswith("-u") and len(word) > 2:
            return "-u" + _user_password(word[2:], key), False
    if program in _GLUED_PASSWORD and word.startswith("-p") and len(word) > 2:
        return "-p" + secret_hash(word[2:], key), False
    flag = _LONG_FLAG.match(word)
    if flag and names_a_secret(flag.group(1)):
        if flag.group(2) is None:
            return word, True
        return f"{flag.group(1)}={secret_hash(flag.group(2), key)}", False
    assignment = _ASSIGNMENT.match(word)
    if assignment and names_a_secret(assignment.group(1)):
        return f"{assignment.group(1)}={secret_hash(assignment.group(2), key)}", False
    word = _URL_USERINFO.sub(lambda m: m.group(1) + secret_hash(m.group(2), key) + m.group(3), word)
    if looks_like_secret(word):
        return secret_hash(word, key), False
    return word, False
