#!/usr/bin/env bash
# Install the fonts the style-transfer job renders from: Debian packages (apt-get) and the
# npm registry's @fontsource families (npm pack, woff2 subsets unpacked under $FONT_DIR), and
# faces from two other npm scopes split by CSS (laid out the same way by css_subsets.py).
# Run once before training; nothing downloads at run time.
#   training/data/fetch_fonts.sh            everything the full job uses
#   training/data/fetch_fonts.sh --minimal  the three Debian fonts the --smoke job and tests use
# The reserved families (@fontsource/liu-jian-mao-cao, long-cang, huninn, iansui) are kept for
# an independent evaluation: never fetched here.
set -euo pipefail
cd "$(dirname "$0")/../.."
FONT_DIR="${HANMO_FONT_DIR:-.cache/fonts}"

MINIMAL=(fonts-noto-cjk fonts-wqy-zenhei fonts-arphic-ukai fonts-lxgw-wenkai)
DEBIAN=(
  fonts-noto-cjk fonts-noto-cjk-extra fonts-arphic-ukai fonts-arphic-uming
  fonts-arphic-gkai00mp fonts-arphic-gbsn00lp fonts-arphic-bkai00mp fonts-arphic-bsmi00lp
  fonts-wqy-zenhei fonts-wqy-microhei fonts-droid-fallback fonts-cns11643-kai fonts-cns11643-sung
  fonts-hanazono fonts-babelstone-han fonts-cwtex-kai fonts-cwtex-ming fonts-cwtex-fs
  fonts-cwtex-heib fonts-cwtex-yen fonts-lxgw-wenkai fonts-smiley-sans fonts-klee
  fonts-aoyagi-kouzan-t fonts-aoyagi-soseki fonts-kouzan-mouhitsu fonts-seto fonts-yozvox-yozfont
  fonts-motoya-l-cedar fonts-motoya-l-maruberi fonts-horai-umefont fonts-ipaexfont
)
# name@version: pinned so a rerun renders the same glyphs.
NPM=(
  ma-shan-zheng@5.3.1 zhi-mang-xing@5.3.0 zcool-kuaile@5.3.0 zcool-xiaowei@5.3.0
  zcool-qingke-huangyou@5.3.0 wdxl-lubrifont-sc@5.3.0 cactus-classical-serif@5.3.0
  chiron-goround-tc@5.3.0 chiron-hei-hk@5.3.1 lxgw-marker-gothic@5.3.0 klee-one@5.3.0
  yuji-syuku@5.3.0 zen-kurenaido@5.3.0 yusei-magic@5.3.0
  kaisei-decol@5.3.0 dela-gothic-one@5.3.0 rocknroll-one@5.3.0 reggae-one@5.3.0
  potta-one@5.3.0 mochiy-pop-one@5.3.0 kiwi-maru@5.3.0 hina-mincho@5.2.8 stick@5.3.0
)
# family=package@version:the CSS inside the package that names its woff2 subsets
CSS_NPM=(
  "jiangxi-zhuokai=@chinese-fonts/jxzk@1.3.0:dist/江西拙楷/result.css"
  "honglei-xingshu=@chinese-fonts/hlxsjt@1.2.0:dist/鸿雷行书简体/result.css"
  "alimama-dongfang-dakai=cn-fontsource-alimama-dong-fang-da-kai-regular@1.0.3:font.css"
  "baiwuchang-keke=@chinese-fonts/bwckkt@1.3.0:dist/白无常可可体-Regular/result.css"
  "shetu-modern-square=@chinese-fonts/stmdxf@3.0.0:dist/摄图摩登小方体/result.css"
  "youshe-title-hei=@chinese-fonts/ysbth@1.3.0:dist/优设标题黑/result.css"
  "douyin-sans-bold=@chinese-fonts/dymh@3.0.0:dist/DouyinSansBold/result.css"
  "douyu-zhuiguang=@chinese-fonts/dyzgt@1.2.0:dist/斗鱼追光体/result.css"
  "maoken-assorted-sans=@chinese-fonts/mksjh@1.4.0:dist/MaokenAssortedSans1.30/result.css"
)

debs=("${DEBIAN[@]}")
[[ "${1:-}" == "--minimal" ]] && debs=("${MINIMAL[@]}") && NPM=() && CSS_NPM=()

scripts/apt-ensure.sh "the style job's fonts" "${debs[@]}"

# fetch NAME PACKAGE LAYOUT [ARG]: npm pack PACKAGE once into $FONT_DIR/npm/NAME; the function
# LAYOUT TGZ_DIR DEST [ARG] unpacks it there
fetch() {
  local dest="$FONT_DIR/npm/$1" tmp
  [[ -f "$dest/.done" ]] && return 0
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$2" >/dev/null)
  mkdir -p "$dest"
  "$3" "$tmp" "$dest" "${@:4}"
  rm -rf "$tmp"
  touch "$dest/.done"
}
# @fontsource: only the files the renderer opens, already in its layout
fontsource() {
  tar -xzf "$1"/*.tgz -C "$2" --strip-components=1 \
    --wildcards 'package/unicode.json' 'package/metadata.json' 'package/LICENSE' 'package/files/*-normal.woff2'
}
# split by CSS: the whole package, laid out by css_subsets.py from the CSS at path $3 in it
css_split() {
  mkdir "$1/x"
  tar -xzf "$1"/*.tgz -C "$1/x"
  python3 training/data/css_subsets.py "$1/x/package/$3" "$2" "$(basename "$2")"
  for f in LICENSE README.md package.json; do
    [[ -f "$1/x/package/$f" ]] && cp "$1/x/package/$f" "$2/"
  done
  return 0
}

mkdir -p "$FONT_DIR/npm"
for spec in "${NPM[@]}"; do
  fetch "${spec%@*}" "@fontsource/$spec" fontsource
done
for entry in "${CSS_NPM[@]}"; do
  rest="${entry#*=}"
  fetch "${entry%%=*}" "${rest%%:*}" css_split "${rest#*:}"
done
echo "fonts ready: $(fc-list :lang=zh family | wc -l) Debian CJK faces, $(ls "$FONT_DIR/npm" | wc -l) npm families in $FONT_DIR/npm"
