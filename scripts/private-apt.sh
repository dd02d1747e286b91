# Sourced: a private apt state with trixie, sid and bookworm-backports, for downloading newer
# Debian packages without touching the system's apt state (nothing is ever installed from it).
# Sets APTX (its folder, default $TMPDIR/assemble-apt) and APT_OPTIONS (the apt-get/apt-cache
# options that select it); runs `apt-get update` on it the first time.
APTX=${APTX:-${TMPDIR:-/tmp}/assemble-apt}
if [ ! -f "$APTX/etc/sources.list" ]; then
  mkdir -p "$APTX/etc" "$APTX/lists/partial" "$APTX/cache/archives/partial"
  # the same Debian mirror the system's own apt sources use
  # shellcheck source=scripts/debian-mirror.sh
  source "$(dirname "${BASH_SOURCE[0]}")/debian-mirror.sh"
  for s in "trixie main" "sid main" "bookworm-backports main"; do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $s"
  done > "$APTX/etc/sources.list.new"
  APT_OPTIONS=(-oDir::State::Lists=$APTX/lists -oDir::Etc::SourceList=$APTX/etc/sources.list.new -oDir::Etc::SourceParts=/dev/null -oDir::Cache=$APTX/cache -oAPT::Sandbox::User=root)
  apt-get "${APT_OPTIONS[@]}" update
  # Only a state that was updated counts as made: a failed update is tried again next time.
  mv "$APTX/etc/sources.list.new" "$APTX/etc/sources.list"
fi
APT_OPTIONS=(-oDir::State::Lists=$APTX/lists -oDir::Etc::SourceList=$APTX/etc/sources.list -oDir::Etc::SourceParts=/dev/null -oDir::Cache=$APTX/cache -oAPT::Sandbox::User=root)
