"""The cause catalog: the contract's ids, both languages, and fixes rendered for a target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbook import catalog
from runbook.errors import BadInput

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "CONTRACT.md"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def contract_ids() -> set[str]:
    if not CONTRACT.is_file():
        pytest.skip(f"the contract is not beside this checkout ({CONTRACT})")
    table = CONTRACT.read_text().split("## Cause ids", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| ([a-z]+\.[a-z_0-9]+) \|", table, re.M))


def test_ids_are_exactly_the_contracts() -> None:
    assert set(catalog.CAUSE_IDS) == contract_ids()
    assert len(catalog.CAUSE_IDS) == len(set(catalog.CAUSE_IDS))


@pytest.mark.parametrize("cause_id", catalog.CAUSE_IDS)
def test_every_cause_has_english_and_japanese(cause_id: str) -> None:
    facts = {"user": "alice", "hostname": "db1", "port": 2222}
    en = catalog.render(cause_id, "en", **facts)
    ja = catalog.render(cause_id, "ja", **facts)
    for text in (en, ja):
        assert text.title.strip() and text.explanation.strip() and text.fix
    assert not JAPANESE.search(en.title + en.explanation + "".join(en.fix))
    assert JAPANESE.search(ja.title + ja.explanation)
    assert en.title != ja.title
    # The same commands in both languages: only prose and comments are translated.
    assert _commands(en.fix) == _commands(ja.fix) or cause_id in LOCALISED_COMMANDS
    texts = catalog.get(cause_id).text
    assert set(texts["en"].variants) == set(texts["ja"].variants)
    assert set(texts["en"].explanations) == set(texts["ja"].explanations)
    assert set(texts["en"].titles) == set(texts["ja"].titles)
    for name, entries in texts["en"].variants.items():
        assert _commands(_lines(entries)) == _commands(_lines(texts["ja"].variants[name])), name


def _lines(entries) -> list[str]:
    """Fix entries as lines: each alternative in turn, without the "?" of an option."""
    lines = []
    for entry in entries:
        lines += [entry] if isinstance(entry, str) else list(entry)
    return [line.lstrip("?") for line in lines]


# Causes whose commands carry a placeholder word (USER, PORT) that is translated.
LOCALISED_COMMANDS = {
    "account.invalid_user",
    "account.not_allowed",
    "account.root_denied",
    "auth.password_rejected",
    "proto.not_ssh",
}


def _commands(fix: list[str]) -> list[str]:
    return [line.split("#")[0].strip() for line in fix if not line.startswith("#")]


def test_every_cause_belongs_to_a_phase_in_connection_order() -> None:
    ranks = {c: catalog.phase_rank(c) for c in catalog.CAUSE_IDS}
    assert ranks["client.config_perms"] < ranks["dns.unresolved"] < ranks["port.refused"]
    assert ranks["port.refused"] < ranks["proto.ssh1"] < ranks["kex.no_common_alg"]
    assert ranks["kex.no_common_alg"] < ranks["hostkey.changed"] < ranks["client.key_perms"]
    assert ranks["client.key_perms"] < ranks["auth.key_rejected"] < ranks["account.locked"]
    assert ranks["account.locked"] < ranks["account.nologin"]
    assert catalog.phase_rank("no.such") == len(catalog.PHASES)


def test_changed_host_key_fix_names_the_bracketed_entry_and_never_disables_checking() -> None:
    root = catalog.render(
        "hostkey.changed",
        hostname="web1",
        port=2222,
        user="bob",
        known_hosts="/home/bob/my hosts",
        fingerprint="SHA256:abc",
        key_type="ED25519",
        confidence="high",
    )
    assert "ssh-keygen -R '[web1]:2222' -f '/home/bob/my hosts'" in root.fix
    assert "SHA256:abc" in root.explanation and root.confidence == "high"
    every_text = " ".join(
        " ".join([r.explanation, *r.fix])
        for r in (catalog.render(c, lang) for c in catalog.CAUSE_IDS for lang in catalog.LANGS)
    )
    assert "StrictHostKeyChecking=no" not in every_text
    assert "StrictHostKeyChecking no" not in every_text


def test_port_22_uses_the_plain_host_name() -> None:
    root = catalog.render("hostkey.changed", hostname="web1", port=22)
    assert "ssh-keygen -R 'web1' -f ~/.ssh/known_hosts" in root.fix


def test_unknown_facts_show_as_placeholders_and_braces_in_values_stay() -> None:
    root = catalog.render("client.key_perms", identity_file="/tmp/{user}/key", mode="0644")
    assert "chmod 600 '/tmp/{user}/key'" in root.fix
    assert "/tmp/{user}/key" in root.explanation
    assert "<user>" in " ".join(catalog.render("account.locked").fix)


def test_an_unknown_user_or_port_is_left_to_ssh_in_commands() -> None:
    """Without a user or port the command says none: ssh's defaults, as when it failed."""
    root = catalog.render(
        "kex.no_common_alg", hostname="10.0.0.1", option="KexAlgorithms", algorithm="x"
    )
    assert root.fix[0] == "ssh -o KexAlgorithms=+x 10.0.0.1   # try it once"
    full = catalog.render(
        "kex.no_common_alg", hostname="h", user="u", port=2222, option="Ciphers", algorithm="y"
    )
    assert full.fix[0].startswith("ssh -o Ciphers=+y -p 2222 u@h ")


def test_optional_fix_lines_need_their_facts() -> None:
    plain = catalog.render("port.refused", hostname="h", port=22, user="u", address="10.0.0.1")
    moved = catalog.render(
        "port.refused", hostname="h", port=22, user="u", address="10.0.0.1", other_port=2222
    )
    assert not any("2222" in line for line in plain.fix)
    assert moved.fix[0].startswith("ssh -p 2222 u@h")


def test_bad_ids_and_languages_are_bad_input() -> None:
    with pytest.raises(BadInput):
        catalog.get("auth.nope")
    with pytest.raises(BadInput):
        catalog.render("auth.key_rejected", "fr")


def test_sig_alg_fix_does_not_advise_the_refused_key_type() -> None:
    """A server that refuses ed25519 must not be told to get an ed25519 key."""
    refused = catalog.render(
        "auth.sig_alg", hostname="h", port=22, user="u", refused_algorithm="ssh-ed25519"
    )
    assert "refuses ssh-ed25519" in refused.fix[-1] and "-t ed25519" not in refused.fix[-1]
    general = catalog.render("auth.sig_alg", hostname="h", port=22, user="u")
    assert "ssh-keygen -t ed25519" in general.fix[-1]
