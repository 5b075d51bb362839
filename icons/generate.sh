#!/usr/bin/env bash
# Generates every icon Escale ships from the master drawing icons/escale.svg.
#
#   icons/generate.sh           regenerate all outputs in place
#   icons/generate.sh --check   regenerate into a temp dir and compare, pixel by
#                               pixel, with the files in icons/; exit 1 naming
#                               any stale, missing or malformed file
#
# Needs (Debian/Ubuntu packages):
#   librsvg2-bin  -> rsvg-convert  (rasterizes the SVGs; this ImageMagick has no
#                                   SVG coder of its own)
#   imagemagick   -> /usr/bin/convert, /usr/bin/identify, /usr/bin/compare
#   apt-get install -y --no-install-recommends imagemagick librsvg2-bin
#
# ImageMagick is always called by absolute path (/usr/bin/...): a `convert`
# earlier in PATH (e.g. /usr/local/bin/convert) may be a stand-in.
#
# Output is deterministic on a given machine: no timestamps or other metadata
# chunks are written, so re-running produces the same bytes.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MASTER="$HERE/escale.svg"
IM_CONVERT=/usr/bin/convert
IM_IDENTIFY=/usr/bin/identify
IM_COMPARE=/usr/bin/compare
RSVG=rsvg-convert

# One thread and a fixed locale, so nothing varies between runs.
export MAGICK_THREAD_LIMIT=1 LC_ALL=C

ICO_SIZES=(16 24 32 48 64 256)
TRAY_STATES=(idle syncing paused error waiting)

# "relative path" "width" "height" of every PNG output.
PNG_OUTPUTS=(
  "app/32x32.png 32 32"
  "app/128x128.png 128 128"
  "app/128x128@2x.png 256 256"
  "app/icon.png 512 512"
)
for s in "${TRAY_STATES[@]}"; do PNG_OUTPUTS+=("tray/$s.png 64 64"); done
ICO_OUTPUT="app/icon.ico"

die() { echo "generate.sh: $*" >&2; exit 1; }

usage() {
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

check_tools() {
  local missing=()
  command -v "$RSVG" >/dev/null 2>&1 || missing+=("rsvg-convert (package librsvg2-bin)")
  for t in "$IM_CONVERT" "$IM_IDENTIFY" "$IM_COMPARE"; do
    [[ -x "$t" ]] || missing+=("$t (package imagemagick)")
  done
  if ((${#missing[@]})); then
    printf 'generate.sh: missing tool: %s\n' "${missing[@]}" >&2
    echo "generate.sh: install with: apt-get install -y --no-install-recommends imagemagick librsvg2-bin" >&2
    exit 1
  fi
  [[ -f "$MASTER" ]] || die "master drawing not found: $MASTER"
}

# Metadata-free, 8-bit RGBA PNG writer: im_png IN OUT [extra convert args...]
im_png() {
  local in="$1" out="$2"; shift 2
  "$IM_CONVERT" "$in" "$@" \
    +set date:create +set date:modify -strip \
    -define png:exclude-chunks=date,time \
    -depth 8 "PNG32:$out"
}

# Rasterize an SVG at SIZE x SIZE: svg_png SVG SIZE OUT
svg_png() {
  local svg="$1" size="$2" out="$3" raw
  raw="$(mktemp "$WORK/raw.XXXXXX.png")"
  "$RSVG" --width="$size" --height="$size" --format=png --output="$raw" "$svg"
  im_png "$raw" "$out"
  rm -f "$raw"
}

# Tray badges: small SVG fragments on a 64x64 canvas, bottom-right corner.
# Badge disc: centre (49,49), radius 14. A transparent ring (radius 17) is cut
# out of the logo around it so the badge stays legible on any panel colour.
write_badges() {
  local d="$1"
  local head='<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
  # Cut-out mask (only its alpha matters).
  cat >"$d/knockout.svg" <<EOF
$head<circle cx="49" cy="49" r="17" fill="#000"/></svg>
EOF
  # idle: green disc, white check mark.
  cat >"$d/idle.svg" <<EOF
$head<circle cx="49" cy="49" r="14" fill="#16a34a"/>
<path d="M42.5 49.5 L47 54 L55.5 44.5" fill="none" stroke="#fff" stroke-width="3.6" stroke-linecap="round" stroke-linejoin="round"/></svg>
EOF
  # syncing: sky-blue disc, two white circular arrows.
  cat >"$d/syncing.svg" <<EOF
$head<circle cx="49" cy="49" r="14" fill="#0ea5e9"/>
<g fill="none" stroke="#fff" stroke-width="3" stroke-linecap="round">
<path d="M41.5 47.5 A7.8 7.8 0 0 1 55 44"/><path d="M56.5 50.5 A7.8 7.8 0 0 1 43 54"/></g>
<g fill="#fff" stroke="#fff" stroke-width="1" stroke-linejoin="round">
<path d="M57.5 40.5 L57.5 46.5 L51.5 46.5 Z"/><path d="M40.5 57.5 L40.5 51.5 L46.5 51.5 Z"/></g></svg>
EOF
  # paused: slate-grey disc, two white bars.
  cat >"$d/paused.svg" <<EOF
$head<circle cx="49" cy="49" r="14" fill="#64748b"/>
<rect x="43.5" y="42.5" width="4" height="13" rx="1.4" fill="#fff"/>
<rect x="50.5" y="42.5" width="4" height="13" rx="1.4" fill="#fff"/></svg>
EOF
  # error: red disc, white "!" (bar + dot, drawn as shapes).
  cat >"$d/error.svg" <<EOF
$head<circle cx="49" cy="49" r="14" fill="#dc2626"/>
<rect x="47" y="40.5" width="4" height="10.5" rx="2" fill="#fff"/>
<circle cx="49" cy="55.2" r="2.3" fill="#fff"/></svg>
EOF
  # waiting (for space on the relay): amber disc, white hourglass.
  cat >"$d/waiting.svg" <<EOF
$head<circle cx="49" cy="49" r="14" fill="#d97706"/>
<path d="M43 41.5 H55 M43 56.5 H55" stroke="#fff" stroke-width="2.6" stroke-linecap="round"/>
<path d="M44.5 42 H53.5 L49 49 L53.5 56 H44.5 L49 49 Z" fill="#fff" stroke="#fff" stroke-width="1.5" stroke-linejoin="round"/></svg>
EOF
}

# Generate every output into directory OUT (which must exist).
generate_into() {
  local out="$1" entry rel w s
  mkdir -p "$out/app" "$out/tray"

  # App icons, each rasterized straight from the master at its own size.
  for entry in "${PNG_OUTPUTS[@]}"; do
    read -r rel w _ <<<"$entry"
    [[ "$rel" == app/* ]] || continue
    svg_png "$MASTER" "$w" "$out/$rel"
  done

  # Windows .ico: one frame per size, each rendered from the master.
  local frames=()
  for s in "${ICO_SIZES[@]}"; do
    svg_png "$MASTER" "$s" "$WORK/ico-$s.png"
    frames+=("$WORK/ico-$s.png")
  done
  "$IM_CONVERT" "${frames[@]}" \
    +set date:create +set date:modify -strip \
    -define png:exclude-chunks=date,time \
    -alpha on -depth 8 "ICO:$out/$ICO_OUTPUT"

  # Tray icons: master at 64 px, ring cut out, state badge on top.
  local badges="$WORK/badges"
  mkdir -p "$badges"
  write_badges "$badges"
  svg_png "$MASTER" 64 "$WORK/tray-logo.png"
  svg_png "$badges/knockout.svg" 64 "$WORK/tray-knockout.png"
  for s in "${TRAY_STATES[@]}"; do
    svg_png "$badges/$s.svg" 64 "$WORK/tray-badge-$s.png"
    im_png "$WORK/tray-logo.png" "$out/tray/$s.png" \
      "$WORK/tray-knockout.png" -compose DstOut -composite \
      "$WORK/tray-badge-$s.png" -compose Over -composite
  done
}

# Verify that FILE is an 8-bit RGBA PNG of W x H. Prints a problem, or nothing.
png_problem() {
  local f="$1" w="$2" h="$3" got ihdr
  [[ -f "$f" ]] || { echo "missing"; return; }
  got="$("$IM_IDENTIFY" -format '%m %w %h %[channels]' "$f" 2>/dev/null)" \
    || { echo "not readable as an image"; return; }
  [[ "$got" == "PNG $w $h srgba" ]] \
    || { echo "expected 'PNG $w $h srgba', got '$got'"; return; }
  # IHDR: bit depth (byte 24) 8, colour type (byte 25) 6 = truecolour + alpha.
  ihdr="$(od -An -tu1 -j24 -N2 "$f" | tr -s ' ' | sed 's/^ //; s/ $//')"
  [[ "$ihdr" == "8 6" ]] || echo "PNG IHDR depth/colour type is '$ihdr', expected '8 6' (RGBA)"
}

# Verify the .ico holds exactly the expected sizes, all with alpha.
ico_problem() {
  local f="$1" got want
  [[ -f "$f" ]] || { echo "missing"; return; }
  # Frames up to 64 px are 32-bit BMPs; the 256 px frame is stored as PNG
  # inside the .ico (the usual layout since Windows Vista).
  got="$("$IM_IDENTIFY" -format '%wx%h %[channels]\n' "$f" 2>/dev/null)" \
    || { echo "not readable as an image"; return; }
  want="$(for s in "${ICO_SIZES[@]}"; do echo "${s}x${s} srgba"; done)"
  [[ "$got" == "$want" ]] \
    || echo "frames are [$(paste -sd' ' <<<"$got")], expected [$(paste -sd' ' <<<"$want")]"
}

# Pixel difference count between two single images (0 = identical).
pixels_differ() {
  local a="$1" b="$2" ae
  # compare exits 1 when images differ and 2 on error; the metric goes to stderr.
  ae="$("$IM_COMPARE" -metric AE "$a" "$b" null: 2>&1)" || true
  [[ "$ae" == "0" ]] && return 1
  echo "$ae"
  return 0
}

# Compare committed outputs in $HERE with fresh ones in $1. Returns 1 if stale.
check_against() {
  local fresh="$1" entry rel w h problem diff stale=0 i n
  for entry in "${PNG_OUTPUTS[@]}"; do
    read -r rel w h <<<"$entry"
    problem="$(png_problem "$HERE/$rel" "$w" "$h")"
    if [[ -n "$problem" ]]; then
      echo "STALE icons/$rel: $problem" >&2; stale=1; continue
    fi
    cmp -s "$HERE/$rel" "$fresh/$rel" && continue
    if diff="$(pixels_differ "$HERE/$rel" "$fresh/$rel")"; then
      echo "STALE icons/$rel: $diff pixel(s) differ from what escale.svg / generate.sh produce" >&2
      stale=1
    fi
  done

  rel="$ICO_OUTPUT"
  problem="$(ico_problem "$HERE/$rel")"
  if [[ -n "$problem" ]]; then
    echo "STALE icons/$rel: $problem" >&2; stale=1
  elif ! cmp -s "$HERE/$rel" "$fresh/$rel"; then
    n=${#ICO_SIZES[@]}
    for ((i = 0; i < n; i++)); do
      if diff="$(pixels_differ "$HERE/${rel}[$i]" "$fresh/${rel}[$i]")"; then
        echo "STALE icons/$rel: frame ${ICO_SIZES[$i]}x${ICO_SIZES[$i]}: $diff pixel(s) differ" >&2
        stale=1
      fi
    done
  fi
  return "$stale"
}

main() {
  local mode=generate
  case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  check_tools

  WORK="$(mktemp -d "${TMPDIR:-/tmp}/escale-icons.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  local fresh="$WORK/out"
  mkdir -p "$fresh"
  generate_into "$fresh"

  if [[ $mode == check ]]; then
    if check_against "$fresh"; then
      echo "icons: all outputs up to date with escale.svg"
      exit 0
    fi
    echo "icons: stale or malformed output(s) above; run icons/generate.sh and commit the result" >&2
    exit 1
  fi

  # Install the fresh set, then validate what landed.
  local entry rel w h problem bad=0
  mkdir -p "$HERE/app" "$HERE/tray"
  for entry in "${PNG_OUTPUTS[@]}"; do
    read -r rel _ <<<"$entry"
    cp "$fresh/$rel" "$HERE/$rel"
  done
  cp "$fresh/$ICO_OUTPUT" "$HERE/$ICO_OUTPUT"

  for entry in "${PNG_OUTPUTS[@]}"; do
    read -r rel w h <<<"$entry"
    problem="$(png_problem "$HERE/$rel" "$w" "$h")"
    if [[ -n "$problem" ]]; then echo "BAD icons/$rel: $problem" >&2; bad=1
    else echo "wrote icons/$rel (${w}x${h} RGBA)"; fi
  done
  problem="$(ico_problem "$HERE/$ICO_OUTPUT")"
  if [[ -n "$problem" ]]; then echo "BAD icons/$ICO_OUTPUT: $problem" >&2; bad=1
  else echo "wrote icons/$ICO_OUTPUT ($(IFS=,; echo "${ICO_SIZES[*]}") px, RGBA)"; fi
  exit "$bad"
}

main "$@"
