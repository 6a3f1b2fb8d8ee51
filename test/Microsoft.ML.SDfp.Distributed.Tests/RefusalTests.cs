namespace Microsoft.ML.SDfp.Distributed.Tests;

/// <summary>Rank 1 disagrees with rank 0 at start-up; both ranks refuse with the same message instead of hanging.</summary>
public sealed class RefusalTests
{
    [Theory]
    [InlineData("lr", "TrainingOptions.LearningRate is 0.1 on rank 0 but 0.05 on rank 1.")]
    [InlineData("shape", "training image shape is [1, 8, 8] on rank 0 but [1, 10, 10] on rank 1.")]
    [InlineData("classes", "data check is passed on rank 0 but failed: The training set has 5 classes but the model predicts 4 (ResNetOptions.NumClasses). (Parameter 'train') on rank 1.")]
    [InlineData("shard", "The ranks' training shards differ by more than 1 % (rank 0: 16, rank 1: 4 images)")]
    public void A_rank_that_disagrees_is_refused_at_start_up_naming_the_difference(string disagreement, string expected)
    {
        var run = Mpirun.Run(2, TimeSpan.FromSeconds(90), "train", $"disagree={disagreement}");
        Assert.NotEqual(0, run.ExitCode);
        for (var rank = 0; rank < 2; rank++)
            Assert.Contains(expected, run.Line(rank, "refused"), StringComparison.Ordinal);
        Assert.DoesNotContain("hash", run.Stdout, StringComparison.Ordinal);
    }
}
