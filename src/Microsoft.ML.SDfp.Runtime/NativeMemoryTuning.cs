using System.Runtime.InteropServices;

namespace Microsoft.ML.SDfp.Runtime;

/// <summary>
/// Tuning of glibc's allocator for training loops that allocate and free the same large tensors every step.
/// </summary>
/// <remarks>
/// <para>
/// libtorch allocates CPU tensors with malloc. By default glibc hands large freed blocks back to the kernel (mmap
/// threshold, heap trimming), so the next step's tensor of the same size page-faults on every 4 KiB page as it is first
/// written. Quantised layers make this worse, because their extra activation-sized buffers and TorchSharp's
/// finalizer-freed autograd bookkeeping churn the heap (see <c>QuantizedBackward.EndStep</c>).
/// </para>
/// <para>
/// The setting is process-wide and makes the process keep its peak heap. The library's trainer
/// (<c>ImageClassifierTrainer.Fit</c>, and so the ML.NET trainer) applies it, because a quantised step is not fast
/// without it; code with its own training loop should call <see cref="RetainFreedMemory"/> once at the start. The
/// environment variables <c>MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296
/// MALLOC_TOP_PAD_=268435456</c> have the same effect without code. Measurements: the Numerics README.
/// </para>
/// </remarks>
public static partial class NativeMemoryTuning
{
    private const int TrimThreshold = -1; // M_TRIM_THRESHOLD
    private const int TopPad = -2;        // M_TOP_PAD
    private const int MmapThreshold = -3; // M_MMAP_THRESHOLD

    /// <summary>glibc's ceiling for the mmap threshold on 64-bit (tensors larger than this are always mmapped).</summary>
    public const int MaxMmapThreshold = 32 * 1024 * 1024;

    /// <summary>
    /// Serves allocations up to 32 MiB from the heap and never trims it, so freed tensor memory is reused without page
    /// faults. Returns false (and changes nothing) where the C library is not glibc on Linux.
    /// </summary>
    /// <param name="topPadBytes">Extra heap grown at a time, in bytes. Default 256 MiB.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topPadBytes"/> is negative.</exception>
    public static bool RetainFreedMemory(int topPadBytes = 256 * 1024 * 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(topPadBytes);
        if (!OperatingSystem.IsLinux())
            return false;
        try
        {
            return Mallopt(MmapThreshold, MaxMmapThreshold) == 1
                && Mallopt(TrimThreshold, int.MaxValue) == 1
                && Mallopt(TopPad, topPadBytes) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "mallopt")]
    private static partial int Mallopt(int parameter, int value);
}
