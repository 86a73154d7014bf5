"""The adapter table: which calls of known AI CLIs are prompts, sessions, or state."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicache.local.adapters import ADAPTERS, Kind, classify, config_digest, prompt_of, user_marked
from tests.conftest import ROOT

PROMPT, SESSION, STATE, UNKNOWN = Kind.PROMPT, Kind.INTERACTIVE, Kind.STATEFUL, Kind.UNKNOWN


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        ("llm hello", PROMPT),
        ("llm -m markov hello", PROMPT),
        ("llm prompt -m markov hello", PROMPT),
        ("llm -o temperature 0.2 hello", PROMPT),
        ("llm chat -m markov", SESSION),
        ("llm", SESSION),  # waits for a prompt typed on the terminal
        ("llm logs -n 1", STATE),
        ("llm models", STATE),
        ("llm models default markov", STATE),
        ("llm -c and then?", STATE),
        ("llm --cid 01abc more", STATE),
        ("llm --help", STATE),
        ("claude -p hi", PROMPT),
        ("claude --print --model opus hi", PROMPT),
        ("claude", SESSION),
        ("claude fix the tests", SESSION),
        ("claude -p --continue more", STATE),
        ("claude -p --permission-mode acceptEdits fix it", STATE),
        ("claude mcp list", STATE),
        ("gemini -p hi", PROMPT),
        ("gemini --prompt=hi", PROMPT),
        ("gemini", SESSION),
        ("gemini -i hi", SESSION),
        ("gemini --yolo -p hi", STATE),
        ("qwen -p hi", PROMPT),
        ("ollama run llama3 why is the sky blue", PROMPT),
        ("ollama run llama3", SESSION),
        ("ollama run", STATE),
        ("ollama list", STATE),
        ("ollama pull llama3", STATE),
        ("openai api chat.completions.create -m gpt-4o -g user hi", PROMPT),
        ("openai api models.list", STATE),
        ("gcloud ai endpoints predict 123 --region=eu --json-request=req.json", PROMPT),
        ("gcloud ai models list", STATE),
        ("gcloud config set project x", STATE),
        ("mytool ask something", UNKNOWN),
    ],
)
def test_each_call_is_classified(command: str, kind: Kind) -> None:
    assert classify(command.split()).kind is kind


def test_piped_input_makes_a_prompt_of_a_call_without_text() -> None:
    assert classify(["llm"], stdin_piped=True).kind is PROMPT
    assert classify(["ollama", "run", "llama3"], stdin_piped=True).kind is PROMPT
    assert classify(["claude", "-p"], stdin_piped=True).reads_stdin
    assert not classify(["claude", "-p", "hi"]).reads_stdin


def test_the_tool_is_found_by_its_name_wherever_it_is_installed() -> None:
    assert classify(["/opt/bin/llm", "logs"]).kind is STATE
    assert classify(["/opt/bin/llm", "hi"]).kind is PROMPT


@pytest.mark.parametrize(
    ("command", "prompt"),
    [
        ("llm -m markov -s terse why", "why"),
        ("llm prompt -o temperature 0.5 how are you", "how are you"),
        ("claude -p --model opus explain this", "explain this"),
        ("gemini -p summarise", "summarise"),
        ("ollama run llama3 why is the sky blue", "why is the sky blue"),
        ("openai api chat.completions.create -m gpt-4o -g user hello", "hello"),
        ("llm logs", None),
        ("claude", None),
        ("mytool ask x", None),
    ],
)
def test_prompt_of_returns_the_prompt_text(command: str, prompt: str | None) -> None:
    assert prompt_of(command.split()) == prompt


def test_the_config_digest_follows_the_files_and_variables_that_pick_the_model(
    tmp_path: Path,
) -> None:
    # Prepare
    environ = {"LLM_USER_PATH": str(tmp_path), "HOME": str(tmp_path)}
    invocation = classify(["llm", "hi"])
    # Execute
    none = config_digest(invocation, environ)
    (tmp_path / "default_model.txt").write_text("markov")
    markov = config_digest(invocation, environ)
    (tmp_path / "default_model.txt").write_text("gpt-4o-mini")
    gpt = config_digest(invocation, environ)
    by_env = config_digest(invocation, {**environ, "LLM_MODEL": "markov"})
    # Assert
    assert len({none, markov, gpt, by_env}) == 4
    assert config_digest(invocation, environ) == gpt  # stable
    assert config_digest(classify(["mytool"]), environ) is None


def test_a_file_named_by_the_prompt_is_keyed_by_its_content(tmp_path: Path) -> None:
    request = tmp_path / "req.json"
    invocation = classify(["llm", "-a", str(request), "describe"])
    request.write_text("one")
    first = config_digest(invocation, {})
    request.write_text("two")
    assert config_digest(invocation, {}) != first


def test_user_marks_match_command_prefixes() -> None:
    marks = ("mytool ask", "other")
    assert user_marked(["/usr/bin/mytool", "ask", "x"], marks)
    assert user_marked(["other", "anything"], marks)
    assert not user_marked(["mytool", "tell"], marks)
    assert not user_marked(["mytool"], marks)


def test_readme_documents_every_adapter_and_the_switches() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Which calls are cached", 1)[1].split("\n## ", 1)[0]
    for tool in ADAPTERS:
        assert f"| `{tool}`" in section, f"{tool} is missing from the README adapter table"
    for name in ("AICACHE_DISABLE", "AICACHE_KEY_EXTRA", "show-hits", "cacheable", "--stdin"):
        assert name in readme
