"""The embedded default data: simulated developers asking their AI assistant dev questions.

A question is an *intent* (an action on an object, with a modifier) put into
words: synonyms for each part and a phrasing frame. Two wordings of one intent
are a paraphrase, whose cached answer is right. A *near miss* changes exactly
one part (another object, another number, another flag, a negation, an
opposite word: "start" against "stop", "first" against "last") and keeps
the rest of the wording, often word for word: the hard case for a cosine
threshold. Each developer has their own topics, phrasing habits and mix of
paraphrases and near misses; everything derives from one seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aicache.tasks.semantic_hit.pairs import LabelledPair

Groups = tuple[tuple[str, ...], ...]
"""Meaning groups: words of one group say the same, another group says something else."""


@dataclass(frozen=True, slots=True)
class Topic:
    """One area of questions: its actions, objects and modifiers, as meaning groups."""

    actions: Groups
    objects: Groups
    modifiers: Groups


TOPICS: dict[str, Topic] = {
    "git-branches": Topic(
        (("delete", "remove", "get rid of"), ("rename", "change the name of"), ("create", "make")),
        (
            ("a local branch", "a branch on my machine", "a local git branch"),
            ("a remote branch", "a branch on origin", "a branch on the remote"),
            ("a tag", "a git tag"),
        ),
        (
            ("",),
            (" with --force", " forcefully with -f"),
            (" that is not merged", " not merged yet"),
        ),
    ),
    "git-commits": Topic(
        (("undo", "revert", "roll back"), ("show", "display", "see"), ("squash", "combine")),
        (
            ("the last commit", "my latest commit", "the most recent commit"),
            ("the last 3 commits", "my 3 latest commits", "the three most recent commits"),
            ("the first commit", "the initial commit"),
        ),
        (("",), (" but keep the changes", " keeping my changes"), (" and discard the changes",)),
    ),
    "files": Topic(
        (("find", "search for", "locate"), ("delete", "remove"), ("count", "get the number of")),
        (
            ("files larger than 100 MB", "files bigger than 100 MB", "files over 100 MB"),
            ("files larger than 10 MB", "files bigger than 10 MB"),
            ("empty files", "files with no content"),
            ("hidden files", "dotfiles"),
        ),
        (
            (" in this directory", " in the current folder"),
            (" recursively", " in all subdirectories"),
            (" modified in the last 7 days", " changed in the past week"),
            (" modified in the last 30 days", " changed in the past month"),
        ),
    ),
    "docker": Topic(
        (("stop", "shut down"), ("remove", "delete", "clean up"), ("list", "show")),
        (
            ("all running containers", "every running docker container"),
            ("all docker images", "every image"),
            ("dangling images", "untagged images"),
            ("unused volumes", "docker volumes nobody uses"),
        ),
        (("",), (" with --force", " forcefully")),
    ),
    "processes": Topic(
        (("kill", "terminate", "stop"), ("find", "identify", "look up")),
        (
            ("the process on port 8080", "whatever listens on port 8080"),
            ("the process on port 3000", "whatever listens on port 3000"),
            ("zombie processes", "defunct processes"),
        ),
        (("",), (" with sudo", " as root"), (" without sudo", " not as root")),
    ),
    "python-env": Topic(
        (("create", "set up", "make"), ("activate", "enter", "switch to"), ("delete", "remove")),
        (
            ("a virtual environment", "a venv", "a python virtualenv"),
            ("a conda environment", "a conda env"),
        ),
        ((" with python 3.11", " using python 3.11"), (" with python 3.9", " using python 3.9")),
    ),
    "packages": Topic(
        (("install", "add"), ("uninstall", "remove"), ("upgrade", "update")),
        (
            ("a pip package", "a python package with pip"),
            ("an npm package", "a node package"),
            ("a cargo crate", "a rust crate"),
        ),
        (("",), (" globally", " system-wide"), (" only for my user", " just for me")),
    ),
    "archives": Topic(
        (("extract", "unpack", "decompress"), ("create", "make", "pack"), ("list", "inspect")),
        (("a tar.gz archive", "a tarball", "a .tar.gz file"), ("a zip file", "a zip archive")),
        (
            ("",),
            (" into another folder", " to a different directory"),
            (" excluding node_modules", " without the node_modules folder"),
        ),
    ),
    "keys": Topic(
        (("generate", "create"), ("copy", "install"), ("delete", "revoke")),
        (("an ssh key", "an ssh keypair"), ("a gpg key", "a gnupg key")),
        (("",), (" with a passphrase", " protected by a passphrase"), (" without a passphrase",)),
    ),
    "kubernetes": Topic(
        (("list", "get", "show"), ("delete", "remove"), ("restart", "roll out again")),
        (("pods", "the pods"), ("deployments", "the deployments"), ("services", "the services")),
        ((" in the default namespace", " in namespace default"), (" in all namespaces",)),
    ),
    "permissions": Topic(
        (("make", "set"),),
        (("a script executable", "a shell script runnable"), ("a file read-only",)),
        ((" for everyone", " for all users"), (" only for me", " just for my user")),
    ),
    "text": Topic(
        (("replace", "substitute"), ("count", "get the number of"), ("search for", "grep for")),
        (
            ("a word in a file", "a string in one file"),
            ("a word in all files", "a string across every file"),
            ("the blank lines in a file", "empty lines in a file"),
        ),
        (("",), (" case-insensitively", " ignoring case"), (" case-sensitively",)),
    ),
    "environment": Topic(
        (("set", "define"), ("unset", "remove"), ("print", "show")),
        (("an environment variable", "an env var"), ("a shell alias", "an alias in bash")),
        (("",), (" permanently", " for good"), (" only for this session", " just for now")),
    ),
    "logs": Topic(
        (("show", "print", "display"), ("follow", "watch", "tail live")),
        (
            ("the last 50 lines of the log", "the final 50 lines of the log file"),
            ("the last 500 lines of the log", "the final 500 lines of the log file"),
            ("the first 50 lines of the log", "the top 50 lines of the log file"),
        ),
        (("",), (" with timestamps",), (" without timestamps",)),
    ),
    # Near misses whose one difference is an opposite action ("start" against "stop").
    "services": Topic(
        (("start", "launch"), ("stop", "halt"), ("enable",), ("disable",)),
        (("the nginx service", "nginx"), ("the ssh daemon", "sshd"), ("the docker service",)),
        (("",), (" at boot", " on startup"), (" with systemctl", " using systemctl")),
    ),
    "git-sync": Topic(
        (("push", "upload"), ("pull", "download"), ("force push",)),
        (("the main branch", "main"), ("my feature branch", "the feature branch"), ("all tags",)),
        (("",), (" to origin", " to the remote"), (" to upstream",)),
    ),
    "crypto": Topic(
        (("encrypt",), ("decrypt",), ("sign", "add a signature to")),
        (
            ("a file with gpg", "a file using gpg"),
            ("a folder with openssl", "a directory with openssl"),
        ),
        (("",), (" with a password", " using a passphrase"), (" for one recipient",)),
    ),
}
FRAMES = (
    "how do I {a} {o}{m}",
    "how can I {a} {o}{m}?",
    "what's the command to {a} {o}{m}",
    "is there a way to {a} {o}{m}?",
    "I need to {a} {o}{m}",
    "{a} {o}{m}",
    "what is the best way to {a} {o}{m}",
    "how would you {a} {o}{m} from the terminal",
    "can you tell me how to {a} {o}{m}",
    "command to {a} {o}{m}",
)
KINDS = ("paraphrase", "near-miss", "same-topic", "other-topic")


@dataclass(frozen=True, slots=True)
class Intent:
    """What a question means: a topic and one meaning group of each part."""

    topic: str
    action: int
    obj: int
    modifier: int


@dataclass(frozen=True, slots=True)
class Wording:
    """How a question says its intent: a frame and one synonym of each part."""

    frame: int
    action: int
    obj: int
    modifier: int


def _pick(rng: np.random.Generator, n: int) -> int:
    return int(rng.integers(n))


def say(intent: Intent, wording: Wording, casual: bool) -> str:
    """The question ``intent`` worded by ``wording`` (``casual``: lower case, no '?')."""
    topic = TOPICS[intent.topic]
    actions = topic.actions[intent.action]
    objects = topic.objects[intent.obj]
    modifiers = topic.modifiers[intent.modifier]
    text = FRAMES[wording.frame].format(
        a=actions[wording.action % len(actions)],
        o=objects[wording.obj % len(objects)],
        m=modifiers[wording.modifier % len(modifiers)],
    )
    return text.lower().rstrip("?") if casual else text[0].upper() + text[1:]


def _random_intent(rng: np.random.Generator, topic: str) -> Intent:
    t = TOPICS[topic]
    return Intent(
        topic, _pick(rng, len(t.actions)), _pick(rng, len(t.objects)), _pick(rng, len(t.modifiers))
    )


def _near_miss(rng: np.random.Generator, intent: Intent) -> Intent | None:
    """``intent`` with exactly one part moved to another meaning group (None if none can)."""
    t = TOPICS[intent.topic]
    parts = [
        (name, size)
        for name, size in (
            ("action", len(t.actions)),
            ("obj", len(t.objects)),
            ("modifier", len(t.modifiers)),
        )
        if size > 1
    ]
    if not parts:
        return None
    name, size = parts[_pick(rng, len(parts))]
    current = getattr(intent, name)
    other = (current + 1 + _pick(rng, size - 1)) % size
    values = {"action": intent.action, "obj": intent.obj, "modifier": intent.modifier}
    values[name] = other
    return Intent(intent.topic, values["action"], values["obj"], values["modifier"])


def developer_pairs(seed: int, index: int, pairs: int) -> list[LabelledPair]:
    """Developer ``index``'s questions, each paired with a cached prompt, in time order.

    Parameters
    ----------
    seed
        The population's seed.
    index
        Which developer (each has an independent stream of randomness).
    pairs
        How many pairs.
    """
    rng = np.random.default_rng([seed, index, 7])
    names = tuple(TOPICS)
    topics = [names[i] for i in rng.choice(len(names), size=int(rng.integers(3, 7)), replace=False)]
    frame_habit = rng.dirichlet(np.full(len(FRAMES), 0.7))
    casual = float(rng.uniform(0.0, 0.8))
    mix = rng.dirichlet(np.array([8.0, 7.0, 2.0, 1.0]))  # paraphrase, near miss, topic, other
    keep_wording = float(rng.uniform(0.3, 0.8))  # how often a rewording keeps a part's words

    def wording() -> Wording:
        frame = int(rng.choice(len(FRAMES), p=frame_habit))
        return Wording(frame, _pick(rng, 3), _pick(rng, 3), _pick(rng, 3))

    def reworded(old: Wording) -> Wording:
        """Another wording of the same parts: a frame and synonyms may change.

        Paraphrases and near misses are reworded alike, so that how many words
        two questions share says nothing of the answer by itself: what differs
        does.
        """
        fresh = wording()
        keep = rng.random(4) < keep_wording
        return Wording(
            old.frame if keep[0] else fresh.frame,
            old.action if keep[1] else fresh.action,
            old.obj if keep[2] else fresh.obj,
            old.modifier if keep[3] else fresh.modifier,
        )

    result: list[LabelledPair] = []
    while len(result) < pairs:
        base = _random_intent(rng, topics[_pick(rng, len(topics))])
        cached_wording = wording()
        cached = say(base, cached_wording, rng.random() < casual)
        kind = KINDS[int(rng.choice(len(KINDS), p=mix))]
        query_intent: Intent | None = base
        query_wording = reworded(cached_wording)
        if kind == "near-miss":
            query_intent = _near_miss(rng, base)
        elif kind == "same-topic":
            query_intent = _random_intent(rng, base.topic)
        elif kind == "other-topic":
            query_intent = _random_intent(rng, names[_pick(rng, len(names))])
            query_wording = wording()
        if query_intent is None:
            continue
        query = say(query_intent, query_wording, rng.random() < casual)
        if query == cached:  # asked word for word: an exact hit, not a semantic one
            continue
        result.append(LabelledPair(query, cached, query_intent == base))
    return result
