#!/usr/bin/env bash
# Install the Debian packages that ship real photographs and link them into
# data/photos/{train,holdout} following photos.tsv (the split the default model used).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${1:-data/photos}"
if ! [ -f /usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg ] \
    || ! [ -f /usr/share/digikam/about/images/body-background.jpg ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends lomiri-wallpapers-16.04 \
        lomiri-wallpapers-20.04 plasma-workspace-wallpapers mate-backgrounds lxqt-themes \
        forensics-samples-files sddm-theme-maldives digikam-data palapeli-data >/dev/null
fi
mkdir -p "$root/train" "$root/holdout"
grep -v '^#' "$here/photos.tsv" | while IFS=$'\t' read -r split path _pkg _lic; do
    name="$(echo "$path" | sed 's#/contents/images/2560x1600##; s#.*/wallpapers/##; s#.*/##')"
    case "$path" in  # names that would collide or say nothing
        */maldives/background.jpg) name="maldives.jpg" ;;
        */digikam/*) name="digikam-lake.jpg" ;;
    esac
    ln -sf "$path" "$root/$split/$name"
done
echo "train: $(ls "$root/train" | wc -l) photos, holdout: $(ls "$root/holdout" | wc -l) photos"
