"""Pure text repairs every published-format reader needs (no I/O).

- `fix_codepoints`: Kangxi radicals (⼀ U+2F00 for 一), CJK Radicals Supplement forms and CJK
  compatibility ideographs mapped back to the unified ideographs a search for the word would use.
  Only those blocks are touched: NFKC on the whole text would turn ，：（） into ASCII.
- `is_page_number`: the page-number lines of 公文 and office exports (— 3 —, - 3 -, 第3页, 3/12).
- `join_wrapped`: lines a PDF hard-wrapped rejoined as Chinese writes them (no space), with one
  space only between two ASCII letters/digits.
- `garbage_share`: the share of characters that say a text layer did not decode ((cid:N), U+FFFD,
  private-use code points).
"""

from __future__ import annotations

import re
import unicodedata

# CJK Radicals Supplement: NFKC maps only two of these; the common ones by hand (the form → the
# ideograph the radical is written as in running text).
_RADICALS_SUPPLEMENT = {
    "\u2e84": "乙", "\u2e85": "亻", "\u2e86": "冂", "\u2e87": "几", "\u2e88": "刀", "\u2e89": "刂",
    "\u2e8a": "卜", "\u2e8b": "㔾", "\u2e8c": "小", "\u2e8d": "小", "\u2e8e": "兀", "\u2e8f": "尢",
    "\u2e90": "尢", "\u2e91": "尣", "\u2e92": "巳", "\u2e93": "幺", "\u2e94": "彑", "\u2e95": "彐",
    "\u2e96": "忄", "\u2e97": "心", "\u2e98": "扌", "\u2e99": "攵", "\u2e9b": "旡", "\u2e9c": "日",
    "\u2e9d": "月", "\u2e9e": "歹", "\u2e9f": "母", "\u2ea0": "民", "\u2ea1": "氵", "\u2ea2": "氺",
    "\u2ea3": "灬", "\u2ea4": "爫", "\u2ea5": "爫", "\u2ea6": "丬", "\u2ea7": "牛", "\u2ea8": "犭",
    "\u2ea9": "王", "\u2eaa": "疋", "\u2eab": "目", "\u2eac": "示", "\u2ead": "礻", "\u2eae": "竹",
    "\u2eaf": "糸", "\u2eb0": "纟", "\u2eb1": "罒", "\u2eb2": "罒", "\u2eb3": "罒", "\u2eb4": "罒",
    "\u2eb5": "罒", "\u2eb6": "羊", "\u2eb7": "羊", "\u2eb8": "羊", "\u2eb9": "耂", "\u2eba": "肀",
    "\u2ebb": "肀", "\u2ebc": "月", "\u2ebd": "臼", "\u2ebe": "艹", "\u2ebf": "艹", "\u2ec0": "艹",
    "\u2ec1": "虎", "\u2ec2": "衤", "\u2ec3": "覀", "\u2ec4": "西", "\u2ec5": "见", "\u2ec6": "角",
    "\u2ec7": "角", "\u2ec8": "讠", "\u2ec9": "贝", "\u2eca": "足", "\u2ecb": "车", "\u2ecc": "辶",
    "\u2ecd": "辶", "\u2ece": "辶", "\u2ecf": "阝", "\u2ed0": "钅", "\u2ed1": "长", "\u2ed2": "长",
    "\u2ed3": "长", "\u2ed4": "门", "\u2ed5": "阜", "\u2ed6": "阝", "\u2ed7": "雨", "\u2ed8": "青",
    "\u2ed9": "韦", "\u2eda": "页", "\u2edb": "风", "\u2edc": "飞", "\u2edd": "食", "\u2ede": "食",
    "\u2edf": "食", "\u2ee0": "饣", "\u2ee1": "首", "\u2ee2": "马", "\u2ee3": "骨", "\u2ee4": "鬼",
    "\u2ee5": "鱼", "\u2ee6": "鸟", "\u2ee7": "卤", "\u2ee8": "麦", "\u2ee9": "黄", "\u2eea": "黾",
    "\u2eeb": "斉", "\u2eec": "齐", "\u2eed": "歯", "\u2eee": "齿", "\u2eef": "竜", "\u2ef0": "龙",
    "\u2ef1": "龜", "\u2ef2": "亀", "\u2ef3": "龟",
}
_SUSPECT = re.compile("[\u2e80-\u2fdf\uf900-\ufaff\U0002f800-\U0002fa1f]")
_CID = re.compile(r"\(cid:\d+\)")
_PRIVATE = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
_PAGE_NUMBER = re.compile(
    r"^(?:[-—–－―─~～·•\s]*\d{1,4}[-—–－―─~～·•\s]*"  # — 3 —, - 3 -, 3
    r"|第\s*\d{1,4}\s*页(?:\s*[，,/]?\s*共\s*\d{1,4}\s*页)?"  # 第3页, 第3页 共12页
    r"|\d{1,4}\s*/\s*\d{1,4}"  # 3/12
    r"|[Pp]age\s*\d{1,4}(?:\s*of\s*\d{1,4})?)$"
)
_ASCII_WORD = re.compile(r"[A-Za-z0-9]")
# A line that starts with a heading marker the parser knows (retrieval.parse rule 3), loosely.
HEADING_START = re.compile(
    r"^(?:第[一二三四五六七八九十百零〇\d]{1,6}(?:章|节|部分|篇|编|条)"
    r"|[一二三四五六七八九十]{1,3}[、．.]"
    r"|[（(][一二三四五六七八九十]{1,3}[)）]"
    r"|\d{1,3}[.．、](?!\d)"
    r"|[（(]\d{1,3}[)）]"
    r"|[①-⑳])"
)


def fix_codepoints(text: str) -> str:
    """Map Kangxi radicals, radical-supplement forms and compatibility ideographs to unified ones."""
    if not _SUSPECT.search(text):
        return text
    return _SUSPECT.sub(_fix_one, text)


def _fix_one(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _RADICALS_SUPPLEMENT:
        return _RADICALS_SUPPLEMENT[ch]
    code = ord(ch)
    if 0x2F00 <= code <= 0x2FD5:  # Kangxi radicals: NFKC gives the ideograph
        return unicodedata.normalize("NFKC", ch)
    if 0xF900 <= code <= 0xFAFF or 0x2F800 <= code <= 0x2FA1F:  # compatibility ideographs
        return unicodedata.normalize("NFC", ch)
    return ch


def is_page_number(line: str) -> bool:
    """A line that is only a page number, in the forms reports print them."""
    line = line.strip()
    return bool(line) and bool(_PAGE_NUMBER.match(line)) and any(c.isdigit() for c in line)


def join_wrapped(left: str, right: str) -> str:
    """Two pieces of one wrapped line: no space between them unless both sides are ASCII words."""
    left = left.rstrip()
    right = right.lstrip()
    if left and right and _ASCII_WORD.match(left[-1]) and _ASCII_WORD.match(right[0]):
        return f"{left} {right}"
    return left + right


def garbage_share(text: str) -> float:
    """Share of the non-space characters that are undecoded glyphs: (cid:N), U+FFFD, private use."""
    compact = "".join(text.split())
    if not compact:
        return 0.0
    bad = sum(len(m) for m in _CID.findall(compact)) + compact.count("\ufffd") + len(_PRIVATE.findall(compact))
    return bad / len(compact)


def normalise_digits(line: str) -> str:
    """A line with its digits folded to '#', so 'page 3' and 'page 4' headers compare equal."""
    return re.sub(r"\d+", "#", "".join(line.split()))
