"""The documentation tells the truth about the code."""

from __future__ import annotations

from pathlib import Path

from carecontract.records import schema, validation

ROOT = Path(__file__).parent.parent


def test_records_doc_lists_every_reason_event_type_and_site() -> None:
    text = (ROOT / "docs" / "records.md").read_text()
    for rule in validation.all_rules():
        assert f"`{rule.reason}`" in text, rule.reason
    for name in (*schema.EVENT_TYPES, *schema.TUMOUR_SITE_NAMES, *schema.ALL_COLUMNS):
        assert f"`{name}`" in text, name


def test_readme_has_exactly_the_two_setup_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = readme.split("## Set up", 1)[1].split("## ", 1)[0].split("```bash\n")[1:]
    commands = [b.split("\n```", 1)[0].strip() for b in blocks]
    assert commands[0].endswith("carecontract demo")
    assert len(commands) == 2
    assert commands[1] in (ROOT / ".ci" / "run").read_text()
