"""The font catalogue and the renderer.

Each entry names a font, its near-duplicate group (a group never straddles the split) and
its side: ``train`` or ``heldout`` (evaluation only, never trained on). Debian fonts are read
from /usr/share/fonts; the npm @fontsource families from the folder that
``training/data/fetch_fonts.sh`` fills (woff2 subsets, found through their unicode.json).
The reserved families (Liu Jian Mao Cao, Long Cang, Huninn, Iansui) are not in the catalogue.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app import glyphs
from app.glyphs import GlyphError, normalize

DEB = Path("/usr/share/fonts")
NPM = (
    Path(os.environ.get("HANMO_FONT_DIR", Path(__file__).resolve().parents[2] / ".cache" / "fonts"))
    / "npm"
)


@dataclass(frozen=True)
class FontSpec:
    name: str
    group: str
    side: str  # "train" or "heldout"
    path: str  # a file under /usr/share/fonts, or "npm:<family>[@weight]"
    index: int = 0  # face index in a .ttc


def _noto(kind: str, weights: list[str]) -> list[FontSpec]:
    file = "NotoSansCJK" if kind == "sans" else "NotoSerifCJK"
    return [
        FontSpec(
            f"noto-{kind}-sc-{w.lower()}",
            f"noto-{kind}",
            "train",
            f"opentype/noto/{file}-{w}.ttc",
            2,
        )
        for w in weights
    ]


CATALOGUE: list[FontSpec] = [
    *_noto("sans", ["Thin", "Light", "DemiLight", "Regular", "Medium", "Bold", "Black"]),
    *_noto("serif", ["ExtraLight", "Light", "Regular", "Medium", "SemiBold", "Bold", "Black"]),
    FontSpec("wqy-zenhei", "wqy-zenhei", "train", "truetype/wqy/wqy-zenhei.ttc"),
    # {Droid Sans Fallback, WQY Micro Hei}: one representative
    FontSpec("droid-sans-fallback", "droid", "train", "truetype/droid/DroidSansFallbackFull.ttf"),
    # {UKai, bkai00mp, cwTeX Kai}: one representative
    FontSpec("ar-pl-ukai-cn", "ukai", "train", "truetype/arphic/ukai.ttc"),
    # {UMing, bsmi00lp}: one representative
    FontSpec("ar-pl-uming-cn", "uming", "train", "truetype/arphic/uming.ttc"),
    FontSpec("ar-pl-kaitim-gb", "gkai", "train", "truetype/arphic-gkai00mp/gkai00mp.ttf"),
    # {gbsn00lp, BabelStone Han}: one representative
    FontSpec("ar-pl-sungtil-gb", "gbsn", "train", "truetype/arphic-gbsn00lp/gbsn00lp.ttf"),
    FontSpec("tw-kai", "tw-kai", "train", "truetype/cns11643/TW-Kai-98_1.ttf"),
    FontSpec("tw-sung", "tw-sung", "train", "truetype/cns11643/TW-Sung-98_1.ttf"),
    FontSpec("hanamin-a", "hanamin", "train", "truetype/hanazono/HanaMinA.ttf"),
    FontSpec("cwtex-ming", "cwtex-ming", "train", "truetype/cwtex/cwming.ttf"),
    FontSpec("cwtex-fangsong", "cwtex-fs", "train", "truetype/cwtex/cwfs.ttf"),
    FontSpec("cwtex-heibold", "cwtex-heib", "train", "truetype/cwtex/cwheib.ttf"),
    FontSpec("cwtex-yen", "cwtex-yen", "train", "truetype/cwtex/cwyen.ttf"),
    # Japanese brush, handwriting and display fonts, on the kanji they share with GB2312
    FontSpec("aoyagi-kouzan", "kouzan-t", "train", "truetype/aoyagi-kouzan-t/AoyagiKouzanT.ttf"),
    FontSpec("aoyagi-soseki", "soseki", "train", "truetype/aoyagi-soseki/aoyagi-soseki.ttf"),
    FontSpec("kouzan-brush", "kouzan", "train", "truetype/kouzan-mouhitsu/kouzan-mouhitsu.ttf"),
    FontSpec(
        "kouzan-gyosho",
        "kouzan-gyosho",
        "train",
        "truetype/kouzan-mouhitsu/kouzan-mouhitsu-gyosho.ttf",
    ),
    FontSpec("seto", "seto", "train", "truetype/seto/setofont.ttf"),
    FontSpec("yoz-pen", "yoz", "train", "truetype/yozvox-yozfont/YOzRN_.ttf"),
    FontSpec("motoya-cedar", "motoya-cedar", "train", "truetype/motoya-l-cedar/MTLc3m.ttf"),
    FontSpec("motoya-maru", "motoya-maru", "train", "truetype/motoya-l-maruberi/MTLmr3m.ttf"),
    FontSpec("ipaex-gothic", "ipaex-g", "train", "opentype/ipaexfont-gothic/ipaexg.ttf"),
    FontSpec("ipaex-mincho", "ipaex-m", "train", "opentype/ipaexfont-mincho/ipaexm.ttf"),
    FontSpec("ume-gothic", "ume", "train", "truetype/horai-umefont/ume-tgo4.ttf"),
    *[
        FontSpec(family, family, "train", f"npm:{family}")
        for family in [
            "zcool-kuaile",
            "zcool-xiaowei",
            "cactus-classical-serif",
            "chiron-goround-tc",
            "chiron-hei-hk",
            "lxgw-marker-gothic",
            "yuji-syuku",
            "zen-kurenaido",
            "yusei-magic",
            "kaisei-decol",
            "dela-gothic-one",
            "rocknroll-one",
            "reggae-one",
            "potta-one",
            "mochiy-pop-one",
            "kiwi-maru",
            "hina-mincho",
            "stick",
            # Chinese brush, handwriting and display faces from two other npm scopes
            # (@chinese-fonts/*, cn-fontsource-*), split by CSS and laid out like @fontsource by
            # css_subsets.py; each its own group (nearest catalogue font by mean L1 over 280
            # training characters 0.094 to 0.161). @chinese-fonts/tjl (Tiejili) draws Reggae
            # One's glyphs (0.021) and is left out, as are the scope's copies of held-out or
            # reserved faces (zqzmxs = Zhi Mang Xing, dyh = Smiley Sans, lxgwwenkai, yzklct =
            # Long Cang).
            "jiangxi-zhuokai",
            "honglei-xingshu",
            "alimama-dongfang-dakai",
            "baiwuchang-keke",
            "shetu-modern-square",
            "youshe-title-hei",
            "douyin-sans-bold",
            "douyu-zhuiguang",
            "maoken-assorted-sans",
        ]
    ],
    # Held out: evaluation only. Each group's other members are neither trained nor evaluated.
    FontSpec("ma-shan-zheng", "ma-shan-zheng", "heldout", "npm:ma-shan-zheng"),
    FontSpec("zhi-mang-xing", "zhi-mang-xing", "heldout", "npm:zhi-mang-xing"),
    FontSpec("zcool-qingke-huangyou", "qingke", "heldout", "npm:zcool-qingke-huangyou"),
    FontSpec(
        "lxgw-wenkai", "lxgw-wenkai", "heldout", "truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf"
    ),
    FontSpec(
        "smiley-sans", "smiley-sans", "heldout", "truetype/smiley-sans/SmileySans-Oblique.ttf"
    ),
]
# Yuji Boku and Yuji Mai render the same glyphs as Yuji Syuku from their @fontsource subsets:
# one representative. Near-duplicates of held-out groups that must never reach training:
# WDXL Lubrifont (≈ QingKe HuangYou), the other LXGW WenKai weights and Klee One. They are not
# in CATALOGUE at all.

CONTENT = "noto-sans-sc-regular"
# The generator's content input: the target character drawn in three complete training fonts
# (sans, serif, kai). The first is the primary (the copy baseline, and the atlas holds the
# characters it draws); the others give the model stroke shapes a sans face lacks (brush
# entries and exits, serifs), and where they lack a character the primary stands in.
CONTENTS = (CONTENT, "noto-serif-sc-regular", "ar-pl-ukai-cn")
# bump when rendering changes, so cached banks are rebuilt (v2: npm faces' missing-glyph marks
# are missing glyphs, Font.notdef)
EM_KEY = "v2"
# a code point no font here maps (plane 16's last private-use character): drawn, it is the
# face's missing-glyph mark
NOT_A_CHARACTER = "\U0010fffd"


def render_key(em_ratio: float | None = None) -> str:
    """What a rendered glyph depends on beyond its font, character and size, for cache keys:
    EM_KEY and the frame (``em_ratio``, ``glyphs.EM_RATIO`` by default)."""
    return f"{EM_KEY}-{glyphs.EM_RATIO if em_ratio is None else em_ratio}"


def by_name(name: str) -> FontSpec:
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    raise KeyError(name)


def _ranges(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        part = part.strip().removeprefix("U+").removeprefix("u+")
        lo, _, hi = part.partition("-")
        out.append((int(lo, 16), int(hi or lo, 16)))
    return out


class Font:
    """One catalogue entry opened for rendering: which characters it has, and their glyphs."""

    def __init__(self, spec: FontSpec, em: int = 128) -> None:
        self.spec = spec
        self.em = em
        self._faces: dict[str, ImageFont.FreeTypeFont] = {}
        self._notdef: dict[str, np.ndarray] = {}  # each face's missing-glyph mark, drawn
        if spec.path.startswith("npm:"):
            family = spec.path.removeprefix("npm:")
            folder = NPM / family
            if not (folder / "unicode.json").exists():
                raise FileNotFoundError(f"{folder} missing: run training/data/fetch_fonts.sh")
            subsets = json.loads((folder / "unicode.json").read_text())
            self._files: list[tuple[list[tuple[int, int]], Path]] = []
            for key, ranges in subsets.items():
                sub = key.strip("[]")
                path = folder / "files" / f"{family}-{sub}-400-normal.woff2"
                if path.exists():
                    self._files.append((_ranges(ranges), path))
            self.cmap = {
                cp for ranges, _ in self._files for lo, hi in ranges for cp in range(lo, hi + 1)
            }
        else:
            from fontTools.ttLib import TTFont

            path = DEB / spec.path
            if not path.exists():
                raise FileNotFoundError(f"{path} missing: run training/data/fetch_fonts.sh")
            tt = TTFont(str(path), fontNumber=spec.index, lazy=True)
            self.cmap = set(tt.getBestCmap() or {})
            tt.close()
            self._files = [([(0, 0x10FFFF)], path)]

    def has(self, ch: str) -> bool:
        return ord(ch) in self.cmap

    def _face(self, cp: int) -> ImageFont.FreeTypeFont:
        for ranges, path in self._files:
            if any(lo <= cp <= hi for lo, hi in ranges):
                key = str(path)
                if key not in self._faces:
                    self._faces[key] = ImageFont.truetype(key, self.em, index=self.spec.index)
                return self._faces[key]
        raise KeyError(cp)

    def raw(self, ch: str) -> np.ndarray:
        """The glyph drawn black on white, greyscale in [0, 1], on a canvas with margins."""
        return self._draw(self._face(ord(ch)), ch)

    def _draw(self, face: ImageFont.FreeTypeFont, ch: str) -> np.ndarray:
        side = self.em * 2
        image = Image.new("L", (side, side), 255)
        ImageDraw.Draw(image).text((side // 2, side // 2), ch, font=face, fill=0, anchor="mm")
        return np.asarray(image, dtype=np.float32) / 255.0

    def notdef(self, ch: str) -> bool:
        """Whether the face that should draw ``ch`` draws its missing-glyph mark instead. An npm
        family's unicode.json gives each subset file its CSS unicode-range, which is wider than
        the characters the file holds: for the rest FreeType draws the mark (a crossed box), and
        on 2026-12-03 ten of the Japanese families drew it for 127 to 172 of the 1,776
        characters their ranges claimed (``have`` said they drew them, so they were training
        targets and seen-font truths)."""
        face = self._face(ord(ch))
        return bool(np.array_equal(self._draw(face, ch), self._mark(face)))

    def _mark(self, face: ImageFont.FreeTypeFont) -> np.ndarray:
        """``face``'s missing-glyph mark, drawn once."""
        key = str(face.path)
        if key not in self._notdef:
            self._notdef[key] = self._draw(face, NOT_A_CHARACTER)
        return self._notdef[key]

    def render(self, ch: str, size: int, em_ratio: float | None = None) -> np.ndarray | None:
        """The normalised glyph (in the frame ``em_ratio``, ``glyphs.EM_RATIO`` by default), or
        None when the font lacks it, draws its missing-glyph mark for it, or draws nothing."""
        if not self.has(ch):
            return None
        try:
            face = self._face(ord(ch))
            image = self._draw(face, ch)  # drawn once: for the mark check and the glyph
            if self.spec.path.startswith("npm:") and np.array_equal(image, self._mark(face)):
                return None
            return normalize(image, size, em_ratio)
        except (GlyphError, KeyError):
            return None


@functools.cache
def open_font(name: str, em: int = 128) -> Font:
    return Font(by_name(name), em)


def available() -> list[FontSpec]:
    """Catalogue entries whose files are on this machine."""
    out = []
    for spec in CATALOGUE:
        if spec.path.startswith("npm:"):
            ok = (NPM / spec.path.removeprefix("npm:") / "unicode.json").exists()
        else:
            ok = (DEB / spec.path).exists()
        if ok:
            out.append(spec)
    return out


_NAME = re.compile(r"^[a-z0-9-]+$")
assert all(_NAME.match(s.name) for s in CATALOGUE)
assert len({s.name for s in CATALOGUE}) == len(CATALOGUE)
