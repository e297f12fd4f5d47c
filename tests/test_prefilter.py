"""The literal prefilter may skip a regex only when the regex could not have matched."""

from __future__ import annotations

import random
import re
import sys

from bot.core.bounce.formats import load_formats
from bot.core.knowledge import load
from bot.core.prefilter import (
    CASE_TRAPS,
    Candidates,
    Screen,
    ascii_needles,
    first_match,
    lowered,
    may_match,
    needles,
    starts,
)


def test_case_traps_are_every_non_ascii_character_ignorecase_matches_to_an_ascii_letter() -> None:
    letter = re.compile("[a-z]", re.IGNORECASE)
    found = {chr(c) for c in range(128, sys.maxunicode + 1) if letter.fullmatch(chr(c))}
    assert found == set(CASE_TRAPS)


def test_a_text_holding_a_case_trap_is_never_filtered() -> None:
    pattern = re.compile("mismatch", re.IGNORECASE)
    text = "reverse DNS miſmatch"
    assert pattern.search(text)
    assert lowered(text) is None
    assert may_match(needles(pattern), lowered(text))


def test_needles_of_alternations_groups_and_repeats() -> None:
    assert needles(re.compile(r"5\.7\.513\b|AS16012607|Customer Block list", re.I)) == (
        "5.7.513", "as16012607", "customer block list")
    # "ba" alone is too short, but the z+ right after it makes "baz", as long as "qux"; the first wins.
    assert needles(re.compile(r"(?:foo|bar)baz+qux", re.I)) == ("baz",)
    # A too-short literal joined to the alternatives that follow it: "[" and "ph" alone are too short.
    assert set(needles(re.compile(r"\[(?:TSS\d\d|PH\d\d)\]", re.I)) or ()) == {"[tss", "[ph"}
    assert needles(re.compile(r"\[(?:T|PH)\d\]", re.I)) is None  # "[t" is still too short
    assert set(needles(re.compile(r"(?:foo|bar)-x", re.I)) or ()) == {"bar", "foo"}
    assert needles(re.compile(r"blocked using|block ?list", re.I)) == ("block",)
    assert needles(re.compile(r"\bno\b", re.I)) is None  # too short to be worth a test
    # Leading spaces go where enough is left: every match holds the rest as much as the whole.
    assert needles(re.compile(r"(?:Ip|Connection) frequency limited", re.I)) == ("frequency limited",)
    assert needles(re.compile(r"\w ab", re.I)) == (" ab",)
    # Shorter needles on request, for patterns run one by one rather than swept for.
    assert needles(re.compile(r"\[(?:IPv6:)?([0-9a-f.:]+)\]", re.I), shortest=1) == ("[",)
    assert needles(re.compile(r"\[(?:IPv6:)?([0-9a-f.:]+)\]", re.I)) is None
    assert needles(re.compile(r"(?:abc)?def", re.I)) == ("def",)
    assert needles(re.compile("case sensitive")) is None


def _every_pattern() -> list[re.Pattern[str]]:
    kb = load()
    patterns = [r.pattern for r in kb.rules] + [p.pattern for p in kb.phrases]
    patterns += [p for provider in kb.providers.values() for p in provider.text]
    patterns += [m for fmt in load_formats() for m in fmt.markers]
    return patterns


def test_every_rule_example_passes_its_own_prefilter() -> None:
    kb = load()
    for rule in kb.rules:
        assert may_match(rule.needles, lowered(rule.example)), rule.id
    for phrase in kb.phrases:
        if phrase.example:
            assert may_match(phrase.needles, lowered(phrase.example)), phrase.id


def test_no_knowledge_pattern_is_skipped_where_it_matches() -> None:
    rng = random.Random(7)
    patterns = _every_pattern()
    words = [w for r in load().rules for w in r.example.split()]
    for pattern in patterns:
        found = needles(pattern)
        for _ in range(40):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))
            text = "".join(c.upper() if rng.random() < 0.3 else c for c in text)
            if pattern.search(text):
                assert may_match(found, lowered(text)), (pattern.pattern, text)


def test_ascii_needles_join_short_literals_to_the_few_characters_a_class_allows() -> None:
    digits = "0123456789"
    # Comcast's reference codes: "bl", "es" and "rl" are too short alone; with the digit after them
    # they are not (in an ASCII text, where \d is 0-9).
    assert set(ascii_needles(re.compile(r"\b(?:BL|ES|RL)\d{6}\b", re.I)) or ()) == {
        p + d for p in ("bl", "es", "rl") for d in digits}
    bracketed = ascii_needles(re.compile(r"\[(?:T|PH)\d\]", re.I))
    assert set(bracketed or ()) == {"[ph"} | {"[t" + d for d in digits}
    assert ascii_needles(re.compile(r"ab\d{1,3}", re.I)) == tuple(sorted("ab" + d for d in digits))
    assert ascii_needles(re.compile(r"ab[a-z]", re.I)) is None  # too many characters to list
    assert ascii_needles(re.compile(r"ab[^c]", re.I)) is None  # a negation allows nearly any
    assert ascii_needles(re.compile("ab[\u017f]", re.I)) is None  # long s: matches "s" and "S" too
    assert ascii_needles(re.compile(r"x{2,}y", re.I)) is None  # a third x or the y: unknown
    assert ascii_needles(re.compile(r"a(?:b|c\d)", re.I)) is None  # "ab" is a whole match
    assert ascii_needles(re.compile(r"ab\d")) is None  # case-sensitive: its texts are not lowered


def test_no_knowledge_pattern_is_skipped_by_its_ascii_needles_where_it_matches_an_ascii_text() -> None:
    rng = random.Random(11)
    words = [w for r in load().rules for w in r.example.split()]
    codes = ["BL000123", "ES123456", "RL654321", "[TSS04]", "[PH01]", "AS16012607", "550", "5.7.1"]
    checked = 0
    for pattern in _every_pattern():
        found = ascii_needles(pattern)
        if found is None or found == needles(pattern):
            continue
        checked += 1
        for _ in range(200):
            text = " ".join(rng.choice(words + codes) for _ in range(rng.randint(1, 20)))
            text = "".join(c.upper() if rng.random() < 0.3 else c for c in text)
            if pattern.search(text):
                assert may_match(found, lowered(text)), (pattern.pattern, text)
    assert checked  # the knowledge has such a pattern (Comcast's codes)


def test_a_screen_with_needles_for_ascii_texts_only_is_a_candidate_for_every_other_text() -> None:
    code = re.compile(r"\b(?:BL|ES|RL)\d{6}\b", re.I)
    word = re.compile(r"mailbox unavailable", re.I)
    candidates = Candidates((Screen((word,)), Screen((code,))))
    for _ in range(2):  # the first use returns every screen; the second builds the index
        candidates.of(lowered("warm up"))
    assert list(candidates.of(lowered("550 mailbox unavailable: messages refused"))) == [0]
    assert list(candidates.of(lowered("550 refused, see RL000123"))) == [1]
    # "RL" followed by Arabic-Indic digits: \d matches them, so the screen runs.
    arabic = "550 refused, see RL\u0661\u0662\u0663\u0664\u0665\u0666"
    assert code.search(arabic)
    assert 1 in candidates.of(lowered(arabic))


def test_starts_of_anchors_look_arounds_groups_and_alternatives() -> None:
    assert starts(re.compile(r"^\s*foo", re.I | re.M)) is None  # \s* may come first
    assert starts(re.compile(r"^Foo\b bar", re.I | re.M)) == ("foo bar",)
    assert starts(re.compile(r"(?<![\w.])(?=[ab])(?:Abc|bcd)x", re.I)) == ("abc", "bcd")
    assert starts(re.compile(r"-{2,}\s*Original", re.I)) == ("-",)
    assert starts(re.compile(r"Serveur de génération", re.I)) == ("serveur de g",)  # é has case
    assert starts(re.compile(r"管理者向けの診断情報", re.I)) == ("管理者向けの診断情報",)  # no case at all
    assert starts(re.compile(r"(?:abc)?def", re.I)) is None
    assert starts(re.compile(r"abc|\d", re.I)) is None
    assert starts(re.compile("case sensitive")) is None


def test_matching_only_where_a_match_can_start_finds_what_search_finds() -> None:
    from bot.core.bounce import formats, plaintext

    rng = random.Random(13)
    patterns = _every_pattern() + [e for fmt in load_formats() for e in fmt.end] + list(formats.GENERIC_END)
    patterns.append(plaintext._REMOTE_HOST)
    examples = [r.example for r in load().rules]
    words = [w for text in examples for w in text.split()]
    texts = examples + ["line one\n" + " ".join(rng.choice(words) for _ in range(rng.randint(1, 40)))
                        for _ in range(150)]
    texts = ["".join(c.upper() if rng.random() < 0.3 else c for c in text) for text in texts]
    # More false starts than are tried one by one before the regex searches on by itself.
    texts.append("Your message to a b\n" * 9 + "Your message to a@b wasn't delivered")
    for pattern in patterns:
        found = starts(pattern)
        for text in texts:
            ours, plain = first_match(pattern, text, lowered(text), found), pattern.search(text)
            assert (ours and (ours.span(), ours.groups())) == (plain and (plain.span(), plain.groups())), (
                pattern.pattern, text)


def test_matching_from_a_position_finds_what_search_from_it_finds() -> None:
    from bot.core import engine

    rng = random.Random(17)
    words = [w for r in load().rules for w in r.example.split()]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(60)]
    texts += ["Client host [999.1.1.1] blocked; client host [203.0.113.5] BLOCKED using zen.spamhaus.org",
              "Connections will not be accepted from 203.0.113.5, your IP (198.51.100.7) ip=192.0.2.1"]
    for pattern in _every_pattern() + list(engine._IP_IN_REJECTION):
        found = starts(pattern)
        for text in texts:
            for pos in (0, 1, len(text) // 3, len(text) // 2, len(text)):
                ours, plain = first_match(pattern, text, lowered(text), found, pos), pattern.search(text, pos)
                assert (ours and (ours.span(), ours.groups())) == (
                    plain and (plain.span(), plain.groups())), (pattern.pattern, text, pos)


def test_top_level_alternatives_split_only_where_the_meaning_is_kept() -> None:
    from bot.core.prefilter import _top_level_alternatives

    assert _top_level_alternatives(r"a|b(c|d)|[|]|x\|y|[]|]z") == ["a", "b(c|d)", "[|]", r"x\|y", "[]|]z"]
    assert _top_level_alternatives(r"(?i)a|b") == [r"(?i)a|b"]
    assert _top_level_alternatives(r"(a)|\1") == [r"(a)|\1"]


def test_screened_rules_and_phrases_decide_exactly_as_their_regexes() -> None:
    from bot.core.prefilter import Screen

    kb = load()
    rng = random.Random(11)
    examples = [r.example for r in kb.rules] + [p.example for p in kb.phrases if p.example]
    words = [w for text in examples for w in text.split()]
    texts = examples + [" ".join(rng.choice(words) for _ in range(rng.randint(1, 25))) for _ in range(300)]
    for pattern in [r.pattern for r in kb.rules] + [p.pattern for p in kb.phrases]:
        screen = Screen((pattern,), split=True)
        assert screen.search(texts[0], lowered(texts[0])) == bool(pattern.search(texts[0]))  # unscreened
        screen.needles  # noqa: B018 - from here on the split, prefiltered alternatives decide
        for text in texts:
            assert screen.search(text, lowered(text)) == bool(pattern.search(text)), (pattern.pattern, text)


def test_rule_candidates_hold_every_rule_that_matches_in_order() -> None:
    from bot.core.prefilter import Candidates

    kb = load()
    rng = random.Random(5)
    examples = [r.example for r in kb.rules]
    words = [w for text in examples for w in text.split()]
    texts = examples + [" ".join(rng.choice(words) for _ in range(rng.randint(1, 25))) for _ in range(200)]
    candidates = Candidates(tuple(r.screen for r in kb.rules))
    assert list(candidates.of(lowered(texts[0]))) == list(range(len(kb.rules)))  # first use: all
    for text in texts:
        found = list(candidates.of(lowered(text)))
        assert found == sorted(found)
        matching = {i for i, rule in enumerate(kb.rules) if rule.pattern.search(text)}
        assert matching <= set(found), text
    assert len(candidates.of(lowered("nothing to see here"))) < len(kb.rules) // 4


def test_providers_found_by_text_and_host_are_the_first_in_the_datas_order() -> None:
    kb = load()
    receivers = ("receiver", "gateway")
    texts = [r.example for r in kb.rules] * 2  # the second sweep uses the built index
    for text in texts:
        plain = next((p for p in kb.of_kinds(receivers) if any(x.search(text) for x in p.text)), None)
        assert kb.named_in(text, lowered(text), receivers) == plain, text
    hosts = ["mx01.mail.icloud.com", "contoso-com.mail.protection.outlook.com", "mta7.am0.yahoodns.net",
             "gmail-smtp-in.l.google.com", "mx0a-00123401.pphosted.com", "mx.example.org"] * 2
    for host in hosts:
        plain = next((p for p in kb.of_kinds(receivers) if any(x.search(host) for x in p.hosts)), None)
        assert kb.by_host(host, lowered(host), receivers) == plain, host


def test_the_reasons_a_text_may_say_hold_every_reason_whose_phrase_matches() -> None:
    kb = load()
    texts = [p.example for p in kb.phrases if p.example] + [r.example for r in kb.rules]
    for text in texts * 2:  # the second sweep uses the built index
        possible = kb.may_say(lowered(text))
        said = {p.reason for p in kb.phrases if p.pattern.search(text)}
        assert said <= possible, text
    assert len(kb.may_say(lowered("nothing to see here"))) < len(kb.by_reason) // 2


def test_the_finder_reports_every_literal_a_text_holds_overlapping_or_nested() -> None:
    from bot.core.prefilter import Finder

    # Literals starting with a common character (" using", "ed using") and with any other overlap.
    literals = ["block", "blocked", "blocked using", "using zen", "zen", "spamhaus", "(as1601260", "5.7.1",
                " using", "ed using", "sing"]
    finder = Finder({word: [i] for i, word in enumerate(literals)})
    text = "554 5.7.1 client host blocked using zen.spamhaus.org (as16012607)"
    assert finder.find(text) == {i for i, word in enumerate(literals) if word in text}
    assert finder.find("nothing here") == set()
    assert Finder({}).find("anything") == set()
    rng = random.Random(3)
    kb = load()
    words = [w.lower() for r in kb.rules for w in r.example.split()]
    keys = sorted({n for r in kb.rules for n in (r.needles or ())})
    finder = Finder({key: [i] for i, key in enumerate(keys)})
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))
        assert finder.find(text) == {i for i, key in enumerate(keys) if key in text}, text


def test_grouped_phrases_answer_as_their_screens_text_after_text() -> None:
    from bot.core.prefilter import Grouped, Screen

    kb = load()
    rng = random.Random(13)
    examples = [p.example for p in kb.phrases if p.example] + [r.example for r in kb.rules]
    words = [w for text in examples for w in text.split()]
    texts = examples + [" ".join(rng.choice(words) for _ in range(rng.randint(1, 25))) for _ in range(200)]
    groups = {reason: tuple(Screen((p.pattern,), split=True) for p in rows)
              for reason, rows in kb.by_reason.items()}
    grouped = Grouped(groups)
    for text in [*texts, "İstanbul blocked: a case trap is never prefiltered"]:
        for reason, rows in kb.by_reason.items():
            expected = any(p.pattern.search(text) for p in rows)
            assert grouped.says(reason, text, lowered(text)) == expected, (reason, text)
            assert grouped.says(reason, text, lowered(text)) == expected  # remembered answer


def test_grouped_phrases_name_every_group_that_matches_and_no_more_after_the_first_text() -> None:
    from bot.core.prefilter import Grouped, Screen

    kb = load()
    texts = [p.example for p in kb.phrases if p.example] + [r.example for r in kb.rules]
    grouped = Grouped({reason: tuple(Screen((p.pattern,), split=True) for p in rows)
                       for reason, rows in kb.by_reason.items()})
    assert grouped.groups(lowered(texts[0])) is None  # one text alone: every group may match
    for text in texts:
        possible = grouped.groups(lowered(text))
        assert possible is not None
        said = {reason for reason in kb.by_reason if grouped.says(reason, text, lowered(text))}
        assert said == {p.reason for p in kb.phrases if p.pattern.search(text)}, text
        assert said <= possible, text
    nothing = grouped.groups(lowered("nothing to see here"))
    assert nothing is not None and len(nothing) < len(kb.by_reason) // 2
    assert grouped.groups(lowered("İstanbul blocked")) is None  # a case trap is never prefiltered


def test_finders_sharing_a_scanner_each_answer_for_their_own_literals() -> None:
    from bot.core.prefilter import Finder, Scanner

    prepared: list[int] = []
    scanner = Scanner(lambda: prepared.append(1))
    rules = Finder({"blocked": [1], "spamhaus": [2]}, scanner)
    phrases = Finder({"block": [10], "user unknown": [11]}, scanner)
    text = "550 5.7.1 blocked using zen.spamhaus.org"
    assert rules.find(text) == {1, 2}
    assert phrases.find(text) == {10}
    assert phrases.find("550 user unknown") == {11} and rules.find("550 user unknown") == set()
    late = Finder({"zen.": [20]}, scanner)  # joins after the first scan: the trie is rebuilt
    assert late.find(text) == {20} and rules.find(text) == {1, 2}
    assert prepared == [1]


def test_threads_that_warm_the_prefilters_together_decide_as_one_thread_alone() -> None:
    import threading

    from bot.service.diagnose import diagnose_text

    texts = [r.example for r in load().rules]
    alone = load()
    expected = [[d.rule for d in diagnose_text(t, kb=alone)] for t in texts]
    shared = load()  # fresh: its needle indexes and trie are built while the threads race
    results: dict[int, list[list[str | None]]] = {}
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        results[n] = [[d.rule for d in diagnose_text(t, kb=shared)] for t in texts]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[n] == expected for n in range(8))
