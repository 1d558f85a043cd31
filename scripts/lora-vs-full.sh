#!/usr/bin/env bash
# LoRA against full fine-tuning, time per step and heap (scripts/LoraVsFull.java; docs/LORA.md).
# Usage: scripts/lora-vs-full.sh MODEL_DIR|CONFIG.json SEQ_LEN STEPS ROUNDS TEXT...
# Builds the CLI jar if needed (through the launcher), runs nice -n 10 with the launcher's JVM flags.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
. "$root/scripts/jdk.sh"
longspan_find_jdk || exit 2
"$root/longspan" --version >/dev/null
exec nice -n 10 "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -Xmx${LONGSPAN_HEAP:-6g} -XX:+UseG1GC -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=25 -XX:+UseCountedLoopSafepoints -XX:LoopStripMiningIter=1000 \
  -XX:CompileCommand=quiet -XX:CompileCommand=inline,dev.longspan.attention.VectorTileOps::exp -XX:CompileCommand=inline,dev.longspan.kernel.VectorKernels::sigmoid -XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::sum -XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::max -XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::exp -XX:CompileCommand=inline,dev.longspan.kernel.VectorMath::roundHalfEven -XX:CompileCommand=inline,dev.longspan.kernel.VectorQuantKernels::q6 \
  -cp "$root/longspan-cli/target/longspan.jar" "$root/scripts/LoraVsFull.java" "$@" \
  2> >(grep -v 'WARNING: Using incubator modules' >&2)
