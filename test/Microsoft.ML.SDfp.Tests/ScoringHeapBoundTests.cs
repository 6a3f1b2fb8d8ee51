using Microsoft.ML.SDfp.Scoring;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>Scoring keeps the managed heap from growing to a cache-sized generation-0 budget between collections.</summary>
public sealed class ScoringHeapBoundTests
{
    // Arrays that do not escape may live on the stack (.NET 10), and those would not be heap allocations.
    private static byte[]? s_escaped;

    [Fact]
    public void Scoring_never_lets_more_than_the_bound_be_allocated_without_a_generation_0_collection()
    {
        int before = GC.CollectionCount(0);
        ScoringHeapBound.AfterBatch();
        // Small arrays, as a prediction's allocations are; a large one would go to the large-object heap instead.
        for (long allocated = 0; allocated < ScoringHeapBound.AllocationBetweenCollections * 5 / 4; allocated += 1024)
        {
            s_escaped = new byte[1000];
        }

        ScoringHeapBound.AfterBatch();

        // On a machine whose own budget is smaller the runtime collected first; otherwise only the bound did.
        Assert.True(GC.CollectionCount(0) > before, $"no collection after {ScoringHeapBound.AllocationBetweenCollections * 5 / 4} bytes allocated");
    }
}
