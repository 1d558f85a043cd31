package dev.longspan.eval;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;

/** Peak Java heap in use since {@link #start()} (resets the pools' peak counters). */
public final class MemoryProbe {
    private MemoryProbe() {}

    public static MemoryProbe start() {
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            if (p.getType() == MemoryType.HEAP) p.resetPeakUsage();
        }
        return new MemoryProbe();
    }

    /** Sum over heap pools of their peak usage since start (an upper bound of the true peak). */
    public long peak() {
        long sum = 0;
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            if (p.getType() == MemoryType.HEAP) sum += p.getPeakUsage().getUsed();
        }
        return sum;
    }
}
