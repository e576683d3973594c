"""The guide's renderer: three channels, a merchant's overrides, the start-up check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loopdesk.errors import ConfigError
from loopdesk.guides.messages import MESSAGES, RETURN_SAMPLE, MessageSpec, register
from loopdesk.guides.render import Renderer, RenderError, TemplatesError, join_words, main
from loopdesk.guides.reply import CHANNELS, Link, Reply
from loopdesk.settings import Settings

SHOP = "Company Store"
URL = re.compile(r"https?://\S+")
STATUS_URL = RETURN_SAMPLE["status_page_url"]
RETURN_LINK = Link("https://company.loopreturns.com/#/return/new/1086-43215", "Start your return")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer.load(override_dir=None, shop_name=SHOP)


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_error(root: Path) -> TemplatesError:
    with pytest.raises(TemplatesError) as caught:
        Renderer.load(override_dir=root, shop_name=SHOP)
    assert isinstance(caught.value, ConfigError)
    return caught.value


def one(ret: dict[str, object] | None = None, *, stale: bool = False, **kw: object) -> Reply:
    variables = {"ret": ret or RETURN_SAMPLE, "stale": stale}
    return Reply("return_status.one", variables, **kw)  # type: ignore[arg-type]


def several(returns: list[dict[str, object]], *, more: int = 0, stale: bool = False) -> Reply:
    return Reply("return_status.several", {"returns": returns, "more": more, "stale": stale})


STALE = "(This is what we knew at our last check: our returns system isn't answering right now.)"


# Built-ins.


def test_every_message_has_a_builtin_template_per_channel(renderer: Renderer) -> None:
    sources = renderer.templates()
    assert {(s.message, s.channel) for s in sources} == {(m, c) for m in MESSAGES for c in CHANNELS}
    assert not any(s.overridden for s in sources)
    assert all(Path(s.path).is_file() for s in sources)
    assert set(renderer.messages()) == set(MESSAGES)


def test_builtins_print_only_urls_the_reply_carries(renderer: Renderer) -> None:
    def strings(value: object) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    for name, spec in MESSAGES.items():
        for variables in (spec.sample, *spec.variants):
            reply = Reply(name, variables, (RETURN_LINK,), ("Start a return",))
            carried = {RETURN_LINK.url, *strings(variables)}
            for channel in CHANNELS:
                text = renderer.render(reply, channel, customer_name="Jane Doe")
                assert text and text == text.strip()
                assert "<" not in text and "{{" not in text and "{%" not in text
                for url in URL.findall(text):
                    assert url in carried, (name, channel, url)


# The three renderings.


def test_chat_is_short_lines_with_links_inline(renderer: Renderer) -> None:
    text = renderer.render(one(links=(RETURN_LINK,), quick_replies=("Yes",)), "chat")
    assert "\n\n" not in text
    assert f"Details: {STATUS_URL}" in text
    assert f"Start your return: {RETURN_LINK.url}" in text  # not printed by the template
    assert "Yes" not in text  # quick replies go out as data
    assert text.startswith(
        "Your return for order #1086 is on its way to our warehouse. UPS tracking number: "
        "1Z999AA10123456784. Your refund should reach you by Friday, March 13.\n"
    )
    assert STALE not in text
    # Stale data says so, on a line of its own.
    assert renderer.render(one(stale=True), "chat").endswith(f"{STATUS_URL}\n{STALE}")


def test_a_link_the_message_prints_is_not_repeated(renderer: Renderer) -> None:
    link = Link(STATUS_URL, "Your return")
    for channel in CHANNELS:
        assert renderer.render(one(links=(link,)), channel).count(STATUS_URL) == 1


def test_email_greets_details_and_signs_with_the_shop(renderer: Renderer) -> None:
    text = renderer.render(one(), "email", customer_name="  Jane  Doe ")
    paragraphs = text.split("\n\n")
    assert paragraphs[0] == "Hi Jane,"
    assert "It was sent with UPS, tracking number 1Z999AA10123456784." in paragraphs
    assert paragraphs[-1] == f"Best wishes,\nThe {SHOP} team"
    assert STALE not in paragraphs
    assert STALE in renderer.render(one(stale=True), "email").split("\n\n")
    assert "\n\n\n" not in text
    assert renderer.render(one(), "email").startswith("Hello,\n\n")
    assert renderer.render(one(), "email", customer_name="jane@example.com").startswith("Hello,")


def test_email_lists_quick_replies_and_extra_links(renderer: Renderer) -> None:
    fallback = MESSAGES["fallback"].sample
    reply = Reply("fallback", fallback, (RETURN_LINK,), ("Where's my return?", "Start a return"))
    text = renderer.render(reply, "email")
    assert f"\n\nStart your return: {RETURN_LINK.url}\n\n" in text
    assert 'You can also reply with "Where\'s my return?" or "Start a return".' in text


def test_sms_is_plain_short_and_names_the_shop(renderer: Renderer) -> None:
    text = renderer.render(one(), "sms")
    assert text == (
        f"{SHOP}: Your return for #1086 is on its way to our warehouse. Refund expected by "
        "Friday, March 13. Tracking: UPS 1Z999AA10123456784.\n" + STATUS_URL
    )


def test_sms_offers_quick_replies_by_number_only_when_they_fit(renderer: Renderer) -> None:
    clarify = MESSAGES["clarify"].sample
    reply = Reply("clarify", clarify, quick_replies=("Where's my return?", "Start a return"))
    text = renderer.render(reply, "sms")
    assert text.endswith('\nReply 1 for "Where\'s my return?", 2 for "Start a return".')
    many = Reply("clarify", clarify, quick_replies=tuple(f"option number {i}" for i in range(30)))
    text = renderer.render(many, "sms")
    assert "Reply 1" not in text and text.endswith("track an order?")


def test_sms_that_numbers_its_choices_is_not_followed_by_the_numbers_again(
    renderer: Renderer,
) -> None:
    sample = MESSAGES["create_return.outcome"].sample
    choices = ("Refund", "Store credit", "Exchange")
    text = renderer.render(Reply("create_return.outcome", sample, quick_replies=choices), "sms")
    assert "1) Refund" in text and "3) Exchange" in text
    assert "Reply 1 for" not in text


def test_sms_of_many_returns_fits_and_keeps_links_whole(renderer: Renderer) -> None:
    returns = [
        {**RETURN_SAMPLE, "order_name": f"#{1000 + i}", "status_page_url": f"{STATUS_URL}{i}"}
        for i in range(12)
    ]
    text = renderer.render(several(returns, more=3), "sms")
    assert len(text) <= 320
    assert text.startswith(f"{SHOP}: Your returns: #1000: on its way to our warehouse, refund by")
    assert "…" in text
    one_long = one({**RETURN_SAMPLE, "carrier": "Parcel Express " * 30})
    text = renderer.render(one_long, "sms", customer_name="Jane")
    assert len(text) <= 320 and text.endswith(f"…\n{STATUS_URL}")
    assert text.startswith(f"{SHOP}: Your return for #1086 is on its way to our warehouse.")


def test_sms_appends_an_unprinted_link_when_it_fits(renderer: Renderer) -> None:
    handoff = Reply("handoff", MESSAGES["handoff"].sample, (RETURN_LINK,))
    assert renderer.render(handoff, "sms").endswith(f"\n{RETURN_LINK.url}")


def test_output_is_not_escaped(renderer: Renderer) -> None:
    reason = 'Items marked "final sale" <clearance> & gift cards can\'t be returned.'
    reply = Reply("exception.refused", {"order_name": "#1086", "reason": reason})
    for channel in CHANNELS:
        text = renderer.render(reply, channel)
        assert reason in text and "&amp;" not in text and "&#" not in text, channel


def test_render_refuses_a_reply_that_breaks_the_contract(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="no message is named 'nope'"):
        renderer.render(Reply("nope"), "chat")
    with pytest.raises(RenderError, match="lack why"):
        renderer.render(Reply("handoff", {"reason": "x"}), "chat")
    with pytest.raises(RenderError, match="lack stale"):
        renderer.render(Reply("return_status.one", {"ret": RETURN_SAMPLE}), "chat")
    partial = {k: v for k, v in RETURN_SAMPLE.items() if k != "carrier"}
    with pytest.raises(RenderError, match=r"lack returns\[1\]\.carrier") as caught:
        renderer.render(several([RETURN_SAMPLE, partial]), "sms")
    assert caught.value.details["missing"] == ["returns[1].carrier"]
    # A null where the sample has a whole dict is part of the contract (no estimate).
    renderer.render(one({**RETURN_SAMPLE, "estimate": None}), "email")


# A merchant's folder.


def test_a_good_override_changes_that_wording_only(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sms/handoff.j2",
        "Hang on{% if why == 'asked' %}, as you asked{% endif %}: a person will text you.\n",
    )
    write(
        tmp_path,
        "email/_layout.j2",
        "Dear {{ first_name or 'customer' }},\n\n{{ body }}\n\n-- {{ shop_name }}\n",
    )
    write(tmp_path, "README.txt", "our wording\n")  # files beside the channel folders: ignored
    write(tmp_path, "chat/.handoff.j2.swp", "editor leftovers")  # hidden: ignored
    renderer = Renderer.load(override_dir=tmp_path, shop_name=SHOP)
    handoff = Reply("handoff", MESSAGES["handoff"].sample)
    sms = renderer.render(handoff, "sms")
    assert sms == f"{SHOP}: Hang on, as you asked: a person will text you."
    policy = Reply("handoff", {"why": "policy"})
    assert renderer.render(policy, "sms") == f"{SHOP}: Hang on: a person will text you."
    assert renderer.render(handoff, "chat").startswith(
        "I'm passing you to a person on our team, because you asked for a person."
    )
    email = renderer.render(handoff, "email", customer_name="Jane Doe")
    assert email.startswith("Dear Jane,\n\nThank you for your message.")
    assert email.endswith(f"\n\n-- {SHOP}")
    overridden = {(s.message, s.channel) for s in renderer.templates() if s.overridden}
    assert overridden == {("handoff", "sms")}


def test_an_override_can_import_its_own_macros(tmp_path: Path) -> None:
    write(
        tmp_path,
        "chat/_dates.j2",
        "{% macro when(e) %}{{ e.kind }} by {{ e.date_words }}{% endmacro %}\n",
    )
    write(
        tmp_path,
        "chat/return_status.one.j2",
        '{% from "_dates.j2" import when %}\n'
        '{% import "_words.j2" as words %}\n'  # the built-in macros, beside its own
        "{{ ret.order_name }}: {{ words.stage(ret.stage) }}\n"
        "{% if ret.estimate %}({{ when(ret.estimate) }}){% endif %}\n",
    )
    renderer = Renderer.load(override_dir=tmp_path, shop_name=SHOP)
    text = renderer.render(one(), "chat")
    assert text.startswith("#1086: on its way to our warehouse (refund by Friday, March 13)")


def test_an_override_of_the_words_must_keep_every_macro(tmp_path: Path) -> None:
    # `_words.j2` replaces the built-in file whole: the built-in templates call its macros.
    write(tmp_path, "sms/_words.j2", "{% macro stage(key) %}{{ key }}{% endmacro %}\n")
    error = load_error(tmp_path)
    assert "templates/sms/handoff.j2:2: handoff, with its sample:" in str(error)
    assert {"why", "topic", "shipment", "field"} <= {p.variable for p in error.problems}
    assert "stage" not in {p.variable for p in error.problems}


def test_soft_wrapped_lines_join_and_list_items_stay(tmp_path: Path) -> None:
    write(
        tmp_path,
        "chat/return_status.several.j2",
        "Your returns,\n  all of them:\n{% for r in returns %}\n- {{ r.order_name }}\n"
        "  {{ r.stage }}\n{% endfor %}\n\n\nThat's all.\n",
    )
    renderer = Renderer.load(override_dir=tmp_path, shop_name=SHOP)
    sample = MESSAGES["return_status.several"].sample
    text = renderer.render(Reply("return_status.several", sample), "chat")
    assert text == (
        "Your returns, all of them:\n- #1086 on_its_way\n- #1093 processing\n"
        "- #1102 label_unused\nThat's all."
    )


def test_checks_accept_what_a_template_guards(tmp_path: Path) -> None:
    write(
        tmp_path,
        "email/return_status.one.j2",
        "{% if ret.gift_note is defined %}{{ ret.gift_note }}{% endif %}\n"
        "{{ ret.nickname | default('Your return') }} {{ ret.stage }}.\n"
        "{% for key, value in ret.items() %}{{ key }}{% endfor %}\n"
        "{% set extra = {'x': 1} %}{{ extra.y | default(2) }}\n"
        "{% for r in [ret] %}{{ r.order_name }}{% endfor %}\n",
    )
    Renderer.load(override_dir=tmp_path, shop_name=SHOP)


# Each kind of bad override fails `load`, naming the file, the line and the variable.


def test_an_unknown_message_name_fails(tmp_path: Path) -> None:
    path = write(tmp_path, "sms/return_status.on.j2", "Hello\n")
    error = load_error(tmp_path)
    assert f"{path}: no message is named return_status.on (did you mean return_status.one?)" in str(
        error
    )


def test_a_syntax_error_fails_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "chat/handoff.j2", "Hello.\nBecause {{ why }}\n{% if why %}\n")
    error = load_error(tmp_path)
    assert f"{path}:3: syntax error: Unexpected end of template" in str(error)
    assert error.details["problems"][0]["path"] == str(path)


def test_a_missing_variable_in_a_branch_not_taken_fails(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email/handoff.j2",
        "We're on it.\n{% if why == 'nobody' %}\nSorry {{ customer_nmae }}.\n{% endif %}\n",
    )
    error = load_error(tmp_path)
    assert f"{path}:3: `customer_nmae` is not a variable of handoff" in str(error)
    assert "its variables: why;" in str(error)
    assert error.problems[0].variable == "customer_nmae"


def test_a_missing_key_inside_a_variable_fails(tmp_path: Path) -> None:
    one_path = write(
        tmp_path,
        "sms/return_status.one.j2",
        "{{ ret.order_name }}\n{% if not ret.carrier %}\n{{ ret.tracking_numbr }}\n{% endif %}\n",
    )
    several_path = write(
        tmp_path,
        "chat/return_status.several.j2",
        "{% for r in returns %}\n{% if r.estimate %}\n{{ r.estimate.when }}\n{% endif %}\n"
        "{% endfor %}\n",
    )
    error = load_error(tmp_path)
    assert f"{one_path}:3: `ret.tracking_numbr` is not in the sample of return_status.one" in str(
        error
    )
    assert (
        "(it has: carrier, estimate, id, order_name, outcome, stage, status_page_url,"
        " tracking_number)" in str(error)
    )
    assert f"{several_path}:3: `r.estimate.when` is not in the sample" in str(error)
    assert {p.variable for p in error.problems} == {"ret.tracking_numbr", "r.estimate.when"}


def test_a_template_failing_on_a_variant_fails_with_its_line(tmp_path: Path) -> None:
    # The sample has an estimate; a variant has none, where this template breaks.
    path = write(
        tmp_path,
        "chat/return_status.one.j2",
        "{{ ret.order_name }}\nby {{ ret.estimate.date_words }}\n",
    )
    error = load_error(tmp_path)
    assert f"{path}:2: return_status.one, with variant 1 of its sample:" in str(error)
    assert "'None' has no attribute 'date_words'" in str(error)


def test_a_template_that_says_nothing_fails(tmp_path: Path) -> None:
    path = write(tmp_path, "sms/fallback.j2", "{# to do #}\n   \n")
    error = load_error(tmp_path)
    assert f"{path}: fallback, with its sample: renders no text" in str(error)


def test_a_layout_reading_an_unknown_variable_fails(tmp_path: Path) -> None:
    path = write(
        tmp_path, "email/_layout.j2", "Hi {{ first_name }},\n\n{{ body }}\n\n{{ signature }}\n"
    )
    error = load_error(tmp_path)
    assert f"{path}:5: `signature` is not a variable of _layout" in str(error)


def test_misplaced_files_fail(tmp_path: Path) -> None:
    write(tmp_path, "handoff.j2", "x")
    write(tmp_path, "whatsapp/handoff.j2", "x")
    write(tmp_path, "chat/handoff.jinja", "x")
    write(tmp_path, "chat/old/handoff.j2", "x")
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "clarify.j2").write_bytes(b"\xff\xfe not UTF-8")
    text = str(load_error(tmp_path))
    assert f"{tmp_path / 'handoff.j2'}: a template goes in a channel folder" in text
    assert f"{tmp_path / 'whatsapp'}: not a channel folder (chat/, email/, sms/)" in text
    assert f"{tmp_path / 'chat' / 'handoff.jinja'}: not a template" in text
    assert f"{tmp_path / 'chat' / 'old'}: a channel folder holds no folders" in text
    assert "clarify.j2: cannot read" in text
    assert "5 problem(s)" in text


def test_a_folder_that_is_not_there_fails(tmp_path: Path) -> None:
    error = load_error(tmp_path / "wording")
    assert str(tmp_path / "wording") in str(error)
    assert "not a directory" in str(error)


def test_a_message_without_a_template_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(MESSAGES, "order_status.none", MessageSpec({"order_name": "#1"}, "test"))
    write(tmp_path, "chat/order_status.none.j2", "No order {{ order_name }}.\n")
    write(tmp_path, "email/order_status.none.j2", "No order {{ order_name }}.\n")
    error = load_error(tmp_path)
    assert "templates/sms/order_status.none.j2: missing" in str(error)
    assert len(error.problems) == 1
    write(tmp_path, "sms/order_status.none.j2", "No order {{ order_name }}.\n")
    renderer = Renderer.load(override_dir=tmp_path, shop_name=SHOP)
    assert renderer.render(Reply("order_status.none", {"order_name": "#7"}), "sms").endswith(
        "No order #7."
    )


# The catalogue and settings.


def test_the_catalogue_refuses_inconsistent_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("loopdesk.guides.messages.MESSAGES", dict(MESSAGES))
    with pytest.raises(ValueError, match="registered twice"):
        register("handoff", doc="", sample={})
    with pytest.raises(ValueError, match="globals"):
        register("x.links", doc="", sample={"links": []})
    with pytest.raises(ValueError, match="variant lacks"):
        register("x.y", doc="", sample={"a": {"b": 1}}, variants=({"a": {}},))


def test_join_words() -> None:
    assert join_words([]) == ""
    assert join_words(["a"]) == "a"
    assert join_words(["a", "b"], " or ") == "a or b"
    assert join_words(["a", "b", "c"]) == "a, b and c"


def test_the_setting_names_the_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOOPDESK_GUIDE_TEMPLATES_DIR", str(tmp_path))
    assert Settings().guide_templates_dir == tmp_path


def test_the_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(MESSAGES) * len(CHANNELS)
    assert "sms\treturn_status.one\tbuilt-in" in out
    path = write(tmp_path, "sms/handoff.j2", "Someone will text you ({{ why }}).\n")
    assert main([str(tmp_path)]) == 0
    assert f"sms\thandoff\t{path}" in capsys.readouterr().out.splitlines()
    write(tmp_path, "chat/handof.j2", "x")
    assert main([str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "handof.j2: no message is named handof (did you mean handoff?)" in captured.err
