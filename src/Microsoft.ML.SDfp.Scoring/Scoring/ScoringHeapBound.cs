namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// Keeps a scoring process's managed heap from growing to the collector's whole generation-0 budget before it first
/// collects: after every <see cref="AllocationBetweenCollections"/> bytes allocated in the process with no collection
/// in between, the next scored batch runs a generation-0 collection.
/// </summary>
/// <remarks>
/// .NET sizes the generation-0 budget from the largest CPU cache. A virtual machine that reports its host's L3 gets a
/// budget of a hundred MB or more, and a <c>PredictionEngine</c>, which allocates a few KB per prediction, then holds
/// that much more resident memory than the model needs, on both scoring routes; on the TorchSharp route the tensors
/// that only finalizers free wait for the same collection (README, "Scoring memory"). Where the runtime's own budget
/// is smaller than this bound, its collections come first and this never collects. The collections it adds are
/// cheap, because little of a scoring process's young generation survives.
/// </remarks>
internal static class ScoringHeapBound
{
    /// <summary>Managed bytes the process may allocate between two collections before scoring collects.</summary>
    public const long AllocationBetweenCollections = 16L << 20;

    private static long s_allocatedAtMark = -1;
    private static int s_collectionsAtMark = -1;

    /// <summary>Called after each scored batch, from any thread.</summary>
    public static void AfterBatch()
    {
        int collections = GC.CollectionCount(0);
        long allocated = GC.GetTotalAllocatedBytes(precise: false);
        long mark = Volatile.Read(ref s_allocatedAtMark);
        if (collections != Volatile.Read(ref s_collectionsAtMark) || mark < 0)
        {
            // A collection ran (the runtime's or ours) since the mark: count from here.
            Volatile.Write(ref s_collectionsAtMark, collections);
            Volatile.Write(ref s_allocatedAtMark, allocated);
            return;
        }

        // One thread wins the mark and collects; the others go on scoring.
        if (allocated - mark >= AllocationBetweenCollections
            && Interlocked.CompareExchange(ref s_allocatedAtMark, allocated, mark) == mark)
        {
            GC.Collect(0, GCCollectionMode.Forced, blocking: true, compacting: false);
        }
    }
}
