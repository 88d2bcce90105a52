"""`include:` and drop-ins: their order, their errors with file and line, what is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from twofad import policy_dropins
from twofad.policy import REQUIRED
from twofad.policy_file import PolicyError, dropin_included, load, parse

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o644)
    return path


@pytest.fixture
def main(tmp_path: Path) -> Path:
    return write(
        tmp_path / "policy.yaml",
        "include: [policy.d/*.yaml]\nrules:\n  - {name: own, users: [root], action: exempt}\n",
    )


def failure(path: Path, replace: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load(str(path), replace)
    return caught.value.messages


def test_drop_in_rules_follow_the_main_files_in_name_order(main: Path, tmp_path: Path) -> None:
    write(
        tmp_path / "policy.d/b.yaml", "rules:\n  - {name: second, users: [bob], action: required}\n"
    )
    write(tmp_path / "policy.d/a.yaml", "# first\nrules:\n  - name: first\n    action: optional\n")
    write(tmp_path / "policy.d/notes.txt", "not a drop-in\n")
    write(tmp_path / "policy.d/.hidden.yaml", "default: required\n")
    policy = load(str(main))
    assert [r.name for r in policy.rules] == ["own", "first", "second"]
    assert policy.rules[0].file is None
    assert policy.rules[1].file == str(tmp_path / "policy.d/a.yaml")
    # The main file's rules win: the first rule that matches decides.
    assert policy.decide("root", frozenset).rule == "own"
    decided = policy.decide("bob", frozenset)
    assert (decided.rule, decided.where(policy.source)) == (
        "first",
        f"{tmp_path}/policy.d/a.yaml:3",
    )


def test_no_match_is_no_extra_rule(main: Path) -> None:
    assert [r.name for r in load(str(main)).rules] == ["own"]


def test_patterns_are_read_in_their_order_each_file_once(tmp_path: Path) -> None:
    main = write(tmp_path / "policy.yaml", "include: [d/z.yaml, 'd/*.yaml']\n")
    write(tmp_path / "d/a.yaml", "rules: [{name: a, action: exempt}]\n")
    write(tmp_path / "d/z.yaml", "rules: [{name: z, action: exempt}]\n")
    assert [r.name for r in load(str(main)).rules] == ["z", "a"]


def test_the_main_file_is_never_its_own_drop_in(tmp_path: Path) -> None:
    main = write(tmp_path / "policy.yaml", "include: ['*.yaml']\ndefault: required\n")
    write(tmp_path / "more.yaml", "rules: [{name: m, action: exempt}]\n")
    assert [r.name for r in load(str(main)).rules] == ["m"]


def test_unnamed_drop_in_rules_do_not_collide_with_the_main_files(tmp_path: Path) -> None:
    main = write(tmp_path / "policy.yaml", "include: ['d/*.yaml']\nrules: [{action: exempt}]\n")
    write(tmp_path / "d/x.yaml", "rules: [{action: required}]\n")
    assert [r.name for r in load(str(main)).rules] == ["rules[0]", "x.yaml:rules[0]"]


def test_a_name_used_twice_across_files_names_both_places(main: Path, tmp_path: Path) -> None:
    write(tmp_path / "policy.d/a.yaml", "rules:\n  - {name: own, action: required}\n")
    [message] = failure(main)
    assert message == (
        f"{tmp_path}/policy.d/a.yaml:2:1: rules: a rule named 'own' is already in "
        f"{main}:3; names must be unique"
    )


def test_errors_name_the_drop_in_and_its_line(main: Path, tmp_path: Path) -> None:
    write(tmp_path / "policy.d/a.yaml", "rules:\n  - {name: x, gruops: [sudo], action: exempt}\n")
    write(tmp_path / "policy.d/b.yaml", "rules: [\n")
    messages = failure(main)
    assert messages[0].startswith(
        f"{tmp_path}/policy.d/a.yaml:2:15: rules[0]: unknown key 'gruops'"
    )
    assert messages[1].startswith(f"{tmp_path}/policy.d/b.yaml:")
    assert "not valid YAML" in messages[1]


@pytest.mark.parametrize("key", ["default", "include", "admins", "lockout"])
def test_a_drop_in_holds_only_rules(main: Path, tmp_path: Path, key: str) -> None:
    write(tmp_path / "policy.d/a.yaml", f"rules: []\n{key}: x\n")
    [message] = failure(main)
    assert message.startswith(f"{tmp_path}/policy.d/a.yaml:2:")
    assert f"a drop-in holds only rules; put {key!r} in the policy file" in message


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("/etc/twofa/policy.d/*.yaml", "an absolute path"),
        ("../elsewhere/*.yaml", "'..' leads out"),
        ("policy.d/../../x.yaml", "'..' leads out"),
        ("", "expected text"),
        ("x" * 256, "expected 1 to 255"),
    ],
)
def test_a_pattern_leading_out_of_the_directory_is_refused(pattern: str, says: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse(f"include: ['{pattern}']\n", "policy.yaml")
    [message] = caught.value.messages
    assert message.startswith("policy.yaml:1:11: include[0]: ") and says in message


def test_a_symbolic_link_is_refused(main: Path, tmp_path: Path) -> None:
    target = write(tmp_path / "elsewhere.yaml", "rules: []\n")
    (tmp_path / "policy.d").mkdir()
    (tmp_path / "policy.d/a.yaml").symlink_to(target)
    [message] = failure(main)
    assert (
        message
        == f"{tmp_path}/policy.d/a.yaml:1:1: not read: a symbolic link; a drop-in must be a regular file"
    )


def test_a_directory_is_refused(main: Path, tmp_path: Path) -> None:
    (tmp_path / "policy.d/a.yaml").mkdir(parents=True)
    assert "not read: not a regular file" in failure(main)[0]


def test_only_drop_ins_no_one_else_can_write_are_read(main: Path, tmp_path: Path) -> None:
    dropin = write(tmp_path / "policy.d/a.yaml", "rules: []\n")
    dropin.chmod(0o664)
    assert "not read: the file may be written by its group or others" in failure(main)[0]
    dropin.chmod(0o646)
    assert "not read: the file may be written by its group or others" in failure(main)[0]
    dropin.chmod(0o644)
    (tmp_path / "policy.d").chmod(0o777)
    assert "not read: its directory may be written" in failure(main)[0]
    (tmp_path / "policy.d").chmod(0o755)
    assert load(str(main)).rules


@needs_root
def test_a_drop_in_of_another_account_is_refused(main: Path, tmp_path: Path) -> None:
    dropin = write(tmp_path / "policy.d/a.yaml", "rules: []\n")
    os.chown(dropin, 65534, 0)
    message = "not read: the file is owned by uid 65534, not root or this daemon"
    assert message in failure(main)[0]
    os.chown(dropin, 0, 0)
    os.chown(tmp_path / "policy.d", 65534, 0)
    assert "not read: its directory is owned by uid 65534" in failure(main)[0]
    os.chown(tmp_path / "policy.d", 0, 0)
    assert load(str(main)).rules


def test_a_drop_in_given_as_text_replaces_the_file_or_is_added(main: Path, tmp_path: Path) -> None:
    write(tmp_path / "policy.d/a.yaml", "rules: [{name: a, users: [al], action: exempt}]\n")
    preview = {"policy.d/web.yaml": "rules: [{name: web, users: [bob], action: required}]\n"}
    policy = load(str(main), preview)
    assert [r.name for r in policy.rules] == ["own", "a", "web"]
    assert policy.decide("bob", frozenset).action == REQUIRED
    assert [r.name for r in load(str(main), {"policy.d/a.yaml": ""}).rules] == ["own"]
    # Not named by any pattern: not read, and not in force.
    assert [r.name for r in load(str(main), {"other/web.yaml": "x: y"}).rules] == ["own", "a"]
    assert failure(main, {"policy.d/a.yaml": "default: required\n"})


def test_whether_a_drop_in_is_included() -> None:
    policy = parse("include: ['policy.d/*.yaml', extra.yaml]\n")
    assert dropin_included(policy, "policy.d/web-console.yaml")
    assert dropin_included(policy, "extra.yaml")
    assert not dropin_included(policy, "policy.d/sub/web-console.yaml")
    assert not dropin_included(policy, "policy.d/.web-console.yaml")
    assert not dropin_included(parse("default: optional\n"), "policy.d/web-console.yaml")


def test_too_many_drop_ins_are_refused(main: Path, tmp_path: Path) -> None:
    for i in range(policy_dropins.MAX_DROPINS + 1):
        write(tmp_path / f"policy.d/{i:03}.yaml", "")
    assert "more than 64" in failure(main)[0]


def test_a_preview_refuses_what_the_reload_would(main: Path, tmp_path: Path) -> None:
    (tmp_path / "policy.d").mkdir(mode=0o755)
    (tmp_path / "policy.d").chmod(0o775)
    [message] = failure(main, {"policy.d/web.yaml": "rules: []\n"})
    assert message == (
        f"{tmp_path}/policy.d/web.yaml:1:1: would not be read: its directory may be "
        "written by its group or others (chmod go-w)"
    )
