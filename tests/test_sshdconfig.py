"""sshd_config read offline as sshd reads it: first value wins, Include, Match."""

from __future__ import annotations

from pathlib import Path

from runbook.sshdconfig import MatchContext, effective


def _root(tmp_path: Path, main: str, drop_in: str = "") -> Path:
    (tmp_path / "etc/ssh/sshd_config.d").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text(main)
    if drop_in:
        (tmp_path / "etc/ssh/sshd_config.d/10-local.conf").write_text(drop_in)
    return tmp_path


def test_first_value_wins_and_includes_come_in_place(tmp_path) -> None:
    root = _root(
        tmp_path,
        "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\nPort 2222\n",
        "PasswordAuthentication no\n",
    )
    settings, origin = effective(root, MatchContext(user="alice"))
    assert settings["passwordauthentication"] == ["no"]  # the drop-in came first
    assert origin["passwordauthentication"].endswith("10-local.conf:1")
    assert settings["port"] == ["2222"] and settings["strictmodes"] == ["yes"]  # a default


def test_match_blocks_and_accumulating_keywords(tmp_path) -> None:
    root = _root(
        tmp_path,
        "AllowUsers alice\nAllowUsers bob@10.0.0.*\n"
        "Match User carol,!dave Address 192.0.2.0/24\n  PermitRootLogin no\n  MaxAuthTries 2\n"
        "Match Group admins\n  PasswordAuthentication no\n"
        "Match all\n  MaxAuthTries 9\n",
    )
    carol = effective(root, MatchContext(user="carol", address="192.0.2.7"))[0]
    assert carol["allowusers"] == ["alice", "bob@10.0.0.*"]
    assert (carol["permitrootlogin"], carol["maxauthtries"]) == (["no"], ["2"])
    elsewhere = effective(root, MatchContext(user="carol", address="198.51.100.1"))[0]
    assert elsewhere["maxauthtries"] == ["9"] and elsewhere["permitrootlogin"] == [
        "prohibit-password"
    ]
    dave = effective(root, MatchContext(user="dave", groups=["admins"], address="192.0.2.7"))[0]
    assert dave["passwordauthentication"] == ["no"] and dave["maxauthtries"] == ["9"]


def test_missing_or_looping_files_do_not_break(tmp_path) -> None:
    root = _root(tmp_path, "Include sshd_config\nInclude /nope/*.conf\nPort = 2200\n")
    settings, _ = effective(root, MatchContext(user="x"))
    assert settings["port"] == ["2200"]
