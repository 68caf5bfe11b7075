"""English questions → the Chinese gloss the lexical leg and the rules read (retrieval/translate.py)."""

from __future__ import annotations

from retrieval.translate import gloss, parse_glossary, question_lang, reverse_cedict, stem

TABLE = parse_glossary(
    "# test glossary\n"
    "legal adviser\t法律顾问\n"
    "administrative reconsideration\t行政复议\n"
    "mediate\t调解\n"
    "dispute\t矛盾纠纷 纠纷\n"
)
CEDICT = reverse_cedict([
    {"simplified": "律师", "definitions": ["lawyer", "attorney"]},
    {"simplified": "诉讼", "definitions": ["lawsuit", "(law) litigation"]},
    {"simplified": "官司", "definitions": ["lawsuit"]},
    {"simplified": "法", "definitions": ["law"]},  # one character: never used
])
CORPUS = {"律师", "诉讼", "法律顾问", "行政复议", "调解", "矛盾纠纷", "纠纷"}


def known(term: str) -> bool:
    return term in CORPUS


def test_stem_meets_the_same_key_from_both_sides():
    assert stem("disputes") == stem("dispute") and stem("mediated") == stem("mediate") == stem("mediating")
    assert stem("cities") == "city" and stem("planned") == "plan" and stem("business") == "business"


def test_phrases_before_words_and_the_glossary_before_the_dictionary():
    g = gloss("what about legal advisers?", known, TABLE, CEDICT)
    assert g.terms == ("法律顾问",) and g.phrases == ("legal advisers",)
    g = gloss("how many administrative reconsideration cases in 2019", known, TABLE, CEDICT)
    assert "行政复议" in g.terms and "2019年" in g.text.split() and "多少" in g.text.split()
    # glossary terms weigh twice (repeated), dictionary ones once
    assert g.text.split().count("行政复议") == 2


def test_dictionary_terms_only_when_the_corpus_has_them_and_never_single_characters():
    g = gloss("did the city win its lawsuits against lawyers", known, TABLE, CEDICT)
    assert "诉讼" in g.terms and "律师" in g.terms
    assert "官司" not in g.terms  # not in the corpus
    assert "法" not in gloss("law", known, TABLE, CEDICT).terms


def test_places_and_time_words_feed_the_same_rules_chinese_uses():
    g = gloss("how many disputes were mediated in hengyang last year", known, TABLE, CEDICT)
    assert g.places == ("衡阳",) and "去年" in g.text.split() and "调解" in g.terms
    assert "目标" in gloss("what is yantian's gdp growth target", known, TABLE, CEDICT).text
    assert gloss("what is the weather like tomorrow", known, TABLE, CEDICT).terms == ()
    # a local report implementing a national outline is not a question about the State Council
    assert gloss("which national outline did hengyang implement", known, TABLE, CEDICT).places == ("衡阳",)


def test_question_language():
    assert question_lang("How many disputes were mediated?") == "en"
    assert question_lang("2019年衡阳调解了多少矛盾纠纷？") == "zh"
    assert question_lang("GDP是多少") == "zh"  # an English word in a Chinese question
    assert question_lang("12345") == "zh"


def test_hyphenated_words_meet_the_glossary_phrase():
    table = parse_glossary("rule of law\t法治\nspot check\t抽查\n")
    assert "法治" in gloss("who gets the annual rule-of-law report?", known, table, {}).terms
    assert "抽查" in gloss("how many files were spot-checked", known, table, {}).terms
    assert stem("hearings") == stem("hearing") and stem("buildings") == stem("building")


def test_everyday_words_get_no_dictionary_gloss():
    dictionary = reverse_cedict([
        {"simplified": "使用", "definitions": ["to use"]},
        {"simplified": "信息", "definitions": ["news"]},  # "new" stems to the same key as "news"
        {"simplified": "调解", "definitions": ["to mediate"]},
    ])
    g = gloss("can i use the new mediation?", lambda t: True, {}, dictionary)
    assert "使用" not in g.terms and "信息" not in g.terms
    g = gloss("did they use new ways to mediate", lambda t: True, {}, dictionary)
    assert g.terms == ("调解",)


def test_a_question_the_reports_have_no_words_for_gets_no_terms():
    off_topic = gloss("any restaurants near the centre, and should i leave a tip?", known, TABLE, CEDICT)
    assert off_topic.terms == ()


def test_a_time_word_inside_a_translated_phrase_is_not_a_time_word():
    table = parse_glossary("work plan\t工作方案\n")
    g = gloss("when was the work plan drawn up?", known, table, {})
    assert "工作方案" in g.terms and "计划" not in g.text.split()
    # alone it still asks about the plan
    assert "计划" in gloss("what is the plan for 2020?", known, table, {}).text.split()
