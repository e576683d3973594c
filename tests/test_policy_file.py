"""The merchant's policy file: defaults, every table read, and bad files refused with
their line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopdesk.api.app import create_app
from loopdesk.domain.timeline import ProcessingTimes
from loopdesk.errors import ConfigError
from loopdesk.policy.file import DEFAULT_WORDS, Policy, key_line, load_policy, parse_policy
from loopdesk.routing.policy import load_facts_policy
from loopdesk.routing.service import RoutingConfig
from loopdesk.settings import Settings
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "policy.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    policy = load_policy(None)
    assert policy == Policy()
    assert policy.shop.name == ""
    assert policy.returns.window_days == 30
    assert policy.returns.link_verification == "zip"
    assert policy.returns.create_in_conversation is True
    rules = policy.exceptions
    assert (rules.grace_days, rules.vip_grace_multiplier, rules.once_per_days) == (7, 2, 365)
    assert rules.grace_for(vip=False) == 7 and rules.grace_for(vip=True) == 14
    assert rules.final_sale_skus == () and rules.final_sale_titles == ("final sale",)
    assert rules.words.outside_grace == DEFAULT_WORDS["outside_grace"]
    assert policy.processing == ProcessingTimes(5, 3, 5, 0, 2)
    assert policy.facts.vip_tags == ("VIP",)


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    loaded = load_policy(_write(tmp_path, "# nothing set\n"))
    assert loaded == Policy(path=loaded.path)


def test_every_table_is_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[shop]
name = "  Tiny Shop "

[returns]
window_days = 45
link_verification = "email"
create_in_conversation = false

[exceptions]
grace_days = 10
vip_grace_multiplier = 1.5
once_per_days = 0
final_sale_skus = ["FS-", "CLEAR"]
final_sale_titles = ["Final Sale", "no returns"]

[exceptions.words]
final_sale = "Sorry, {order} is final sale at {shop}."

[processing]
in_transit_to_warehouse = 4
refund_to_account = 10
exchange_ships = 1

[vip]
tags = ["Gold"]
emails = ["Boss@Example.com"]
""",
    )
    policy = load_policy(path)
    assert policy.path == path
    assert policy.shop.name == "Tiny Shop"
    assert (policy.returns.window_days, policy.returns.link_verification) == (45, "email")
    assert policy.returns.create_in_conversation is False
    rules = policy.exceptions
    assert rules.grace_for(vip=True) == 15  # 10 x 1.5
    assert rules.once_per_days == 0
    assert rules.final_sale_skus == ("FS-", "CLEAR")
    assert rules.final_sale_titles == ("Final Sale", "no returns")
    assert rules.words.say("final_sale", {"order": "#1", "shop": "Tiny Shop"}) == (
        "Sorry, #1 is final sale at Tiny Shop."
    )
    assert rules.words.already_used == DEFAULT_WORDS["already_used"]  # not set: default
    assert policy.processing == ProcessingTimes(4, 3, 10, 0, 1)
    assert policy.facts.vip_tags == ("VIP", "Gold")
    assert policy.facts.vip_emails == frozenset({"boss@example.com"})


def test_the_shipped_example_loads() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.shop.name == "Company Store"
    assert policy.exceptions.final_sale_skus == ("FS-",)
    assert policy.returns.create_in_conversation is True
    assert "{order}" in policy.exceptions.words.outside_grace
    assert policy.facts.vip_tags == ("VIP", "Gold")


def test_one_read_feeds_the_routing_facts(tmp_path: Path) -> None:
    path = _write(tmp_path, '[vip]\nemails = ["olga@example.com"]\n[exceptions]\ngrace_days = 3\n')
    assert load_facts_policy(path) == load_policy(path).facts
    config = RoutingConfig.from_settings(Settings(policy_file=path))
    assert config.policy.vip_emails == frozenset({"olga@example.com"})
    given = load_policy(None)
    assert RoutingConfig.from_settings(Settings(policy_file=path), policy=given).policy == (
        given.facts
    )


BAD_FILES = [
    # (file text, line, words the reason holds)
    ("[exceptions]\ngrace_days = -1\n", 2, "`exceptions.grace_days`: input should be greater"),
    ("[exceptions]\ngrace_day = 3\n", 2, "unknown key `exceptions.grace_day` (did you mean"),
    ('\n\n[exceptions]\ngrace_days = "7"\n', 4, "`exceptions.grace_days`: input should be a valid"),
    ("[returns]\nwindow_days = 30.5\n", 2, "`returns.window_days`"),
    ('[returns]\nlink_verification = "sms"\n', 2, "'zip', 'email' or 'phone'"),
    ("[returns]\nwindow_days = 99999\n", 2, "less than or equal to 3650"),
    ('[returns]\ncreate_in_conversation = "no"\n', 2, "`returns.create_in_conversation`"),
    ("[processing]\nrefund_to_account = -2\n", 2, "`processing.refund_to_account`"),
    ("[processing]\nrefund_days = 2\n", 2, "unknown key `processing.refund_days`"),
    ("[bogus]\nx = 1\n", 1, "unknown key `bogus`; known: shop, returns"),
    ("# top\n\nwindow_days = 30\n", 3, "unknown key `window_days`"),
    ("[exceptions]\nvip_grace_multiplier = 0.5\n", 2, "greater than or equal to 1"),
    ("[exceptions]\nonce_per_days = true\n", 2, "`exceptions.once_per_days`"),
    ('[exceptions]\nfinal_sale_skus = "FS-"\n', 2, "`exceptions.final_sale_skus`: input should"),
    ('[exceptions]\nfinal_sale_titles = [\n  "final sale",\n  " ",\n]\n', 2, "must not be blank"),
    ("[exceptions.words]\noutside_grace = 'see {foo}'\n", 2, "unknown placeholder {foo}"),
    ("[exceptions.words]\nfinal_sale = 'a {order'\n", 2, "not usable words"),
    ('[exceptions.words]\nfinal_sale = "  "\n', 2, "must not be blank"),
    ("[exceptions.words]\nsorry = 'no'\n", 2, "unknown key `exceptions.words.sorry`"),
    ("[exceptions]\nwords = { final_sale = 3 }\n", 2, "`exceptions.words.final_sale`"),
    ("exceptions.grace_days = -3\n", 1, "`exceptions.grace_days`"),
    ('[shop]\nname = ""\n', 2, "`shop.name`"),
    ('[vip]\ntags = "VIP"\n', 2, "`vip.tags`: input should be a valid list"),
    ('[vip]\nemail = ["a@b.co"]\n', 2, "unknown key `vip.email` (did you mean `emails`?)"),
    ("[shop]\nname = 'x'\n[shop]\nname = 'y'\n", 3, "not valid TOML"),
    ("[returns]\nwindow_days = \n", 2, "not valid TOML: Invalid value"),
    ("[returns]\nwindow_days = 30\nx = [\n", 3, "not valid TOML"),
    ('[exceptions]\nnote = """\ngrace_days = 1\n"""\n', 2, "unknown key `exceptions.note`"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD_FILES)
def test_bad_files_name_the_line_and_the_reason(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    message = caught.value.message
    assert message.startswith(f"{path}:{line}: "), message
    assert reason in message, message


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the policy file"):
        load_policy(tmp_path / "absent.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"[shop]\nname = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_policy(binary)


def test_several_problems_say_how_many_more(tmp_path: Path) -> None:
    path = _write(tmp_path, "[exceptions]\ngrace_days = -1\nonce_per_days = -1\n")
    with pytest.raises(ConfigError, match=r"\(and 1 more problem\)$"):
        load_policy(path)


def test_key_line_finds_keys_tables_and_the_nearest_enclosing_one() -> None:
    text = "[a]\nx = 1\n[a.b]\n'y' = 2\nz.w = 3\n[c]\n"
    assert key_line(text, ("a", "x")) == 2
    assert key_line(text, ("a", "b")) == 3
    assert key_line(text, ("a", "b", "y")) == 4
    assert key_line(text, ("a", "b", "z", "w")) == 5
    assert key_line(text, ("c", "missing")) == 6
    assert key_line(text, ("nowhere",)) is None


def test_the_app_refuses_a_bad_policy_at_start_up(tmp_path: Path) -> None:
    path = _write(tmp_path, "[exceptions]\ngrace_days = -1\n")
    with pytest.raises(ConfigError, match=r"policy\.toml:2: `exceptions\.grace_days`"):
        create_app(Settings(policy_file=path))


def test_parse_policy_is_the_same_as_loading(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert parse_policy(text, EXAMPLE) == load_policy(EXAMPLE)
