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

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir -p "$FONT_DIR/npm"
for spec in "${NPM[@]}"; do
  name="${spec%@*}"
  dest="$FONT_DIR/npm/$name"
  [[ -f "$dest/.done" ]] && continue
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@fontsource/$spec" >/dev/null)
  mkdir -p "$dest"
  tar -xzf "$tmp"/*.tgz -C "$dest" --strip-components=1 \
    --wildcards 'package/unicode.json' 'package/metadata.json' 'package/LICENSE' 'package/files/*-normal.woff2'
  rm -rf "$tmp"
  touch "$dest/.done"
done
for entry in "${CSS_NPM[@]}"; do
  name="${entry%%=*}" rest="${entry#*=}"
  package="${rest%%:*}" css="${rest#*:}"
  dest="$FONT_DIR/npm/$name"
  [[ -f "$dest/.done" ]] && continue
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$package" >/dev/null && mkdir x && tar -xzf ./*.tgz -C x)
  python3 training/data/css_subsets.py "$tmp/x/package/$css" "$dest" "$name"
  for f in LICENSE README.md package.json; do
    [[ -f "$tmp/x/package/$f" ]] && cp "$tmp/x/package/$f" "$dest/"
  done
  rm -rf "$tmp"
  touch "$dest/.done"
done
echo "fonts ready: $(fc-list :lang=zh family | wc -l) Debian CJK faces, $(ls "$FONT_DIR/npm" | wc -l) npm families in $FONT_DIR/npm"
