"""Real bad PDF/DOCX files for the reader tests, made at test time: a scan (an image per page, no text
layer), a PDF whose font has no Unicode map ((cid:N) glyphs), truncated and damaged files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "published"


def scanned_pdf(path: Path, pages: int = 3) -> Path:
    """A PDF of page images only, the way a scanner writes one (Pillow's PDF writer)."""
    from PIL import Image, ImageDraw

    images = []
    for n in range(pages):
        img = Image.new("RGB", (595, 842), "white")
        draw = ImageDraw.Draw(img)
        for y in range(80, 780, 24):
            draw.line((60, y, 535, y), fill="black", width=3)  # lines of "text" as pixels
        draw.text((280, 800), str(n + 1), fill="black")
        images.append(img)
    images[0].save(path, "PDF", save_all=True, append_images=images[1:], resolution=72)
    return path


def cid_pdf(path: Path) -> Path:
    """A one-page PDF drawn with a CID font that has no ToUnicode map: every glyph reads as (cid:N)."""
    glyphs = b"".join(b"%04X" % (0x100 + i) for i in range(40))
    content = b"".join(b"BT /F1 16 Tf 72 %d Td <%s> Tj ET\n" % (760 - 30 * k, glyphs) for k in range(12))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >>"
        b" /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /ABCDEF+SimSun /Encoding /Identity-H /DescendantFonts [6 0 R] >>",
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /ABCDEF+SimSun"
        b" /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor 7 0 R /DW 1000 >>",
        b"<< /Type /FontDescriptor /FontName /ABCDEF+SimSun /Flags 4 /FontBBox [0 -200 1000 800] /ItalicAngle 0"
        b" /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def truncated(src: Path, path: Path, share: float = 0.5) -> Path:
    data = src.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])
    return path


def docx_without_document(path: Path) -> Path:
    """A zip with a .docx name but no word/document.xml inside."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "not a word document")
    path.write_bytes(buf.getvalue())
    return path
