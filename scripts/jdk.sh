# Sourced by ./longspan, ./run-tests and .ci/run: finds a JDK >= 25 and exports JAVA_HOME.
# Order: $JAVA_HOME, then `java` on PATH, then the usual install locations.
# On failure prints one line saying what to install and returns 1.

longspan_java_major() {  # prints the major version of the JDK at $1, or nothing
  local release="$1/release" v
  if [ -f "$release" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$release" | head -n 1)
  elif [ -x "$1/bin/java" ]; then
    v=$("$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  fi
  printf '%s' "$v"
}

longspan_is_jdk25() {  # true when $1 is a JDK (java and javac) of version >= 25
  local v
  [ -n "$1" ] && [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 1
  v=$(longspan_java_major "$1")
  [ -n "$v" ] && [ "$v" -ge 25 ] 2>/dev/null
}

longspan_find_jdk() {
  local c candidates=()
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  if command -v javac >/dev/null 2>&1; then
    c=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
    candidates+=("$c")
  fi
  for c in /usr/lib/jvm/* /usr/java/* /opt/java/* /opt/jdk* /opt/*jdk* \
           "$HOME"/.sdkman/candidates/java/* "$HOME"/.jdks/* "$HOME"/.local/share/jdk* \
           /Library/Java/JavaVirtualMachines/*/Contents/Home; do
    [ -d "$c" ] && candidates+=("$c")
  done
  for c in "${candidates[@]}"; do
    if longspan_is_jdk25 "$c"; then
      export JAVA_HOME="$c"
      return 0
    fi
  done
  if [ -n "${JAVA_HOME:-}" ]; then
    echo "longspan: JAVA_HOME=$JAVA_HOME is not a JDK 25 or newer, and none was found in /usr/lib/jvm, /opt or ~/.sdkman: install a JDK 25 (e.g. Temurin 25) and set JAVA_HOME to it." >&2
  else
    echo "longspan: no JDK 25 or newer found (looked at JAVA_HOME, java on PATH, /usr/lib/jvm, /opt, ~/.sdkman): install a JDK 25 (e.g. Temurin 25) and set JAVA_HOME to it." >&2
  fi
  return 1
}
