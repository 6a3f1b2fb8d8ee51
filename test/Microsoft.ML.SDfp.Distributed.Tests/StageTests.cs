namespace Microsoft.ML.SDfp.Distributed.Tests;

/// <summary>The ML.NET stage with Options.Distributed on two ranks.</summary>
public sealed class StageTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sdfp-mpi-stage-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Both_ranks_return_the_same_model_only_rank_0_logs_and_rank_0_saves()
    {
        var run = Mpirun.Run(2, TimeSpan.FromMinutes(3), "stage", $"out={_folder}");
        run.AssertSucceeded();
        // Same scores, bit for bit, for all 64 rows: same weights, same channel statistics, same calibration.
        Assert.StartsWith("64 ", run.Line(0, "scores"));
        Assert.Equal(run.Line(0, "scores"), run.Line(1, "scores"));
        Assert.Equal("0", run.Line(1, "log lines"));
        Assert.True(int.Parse(run.Line(0, "log lines")) >= 3, run.ToString());
        Assert.Equal(["model.zip"], Directory.EnumerateFiles(_folder).Select(Path.GetFileName));
    }
}
