using System.Diagnostics;
using System.Reflection;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>
/// Options.CheckpointDirectory against a real crash: the training process is killed with SIGKILL, in the middle of an
/// epoch or while it writes a checkpoint, and a new process resumes from what is on disk.
/// </summary>
[Collection(TrainedModelCollection.Name)]
public sealed class CheckpointKillTests(TrainedModelFixture fixture) : IDisposable
{
    private static readonly string Helper = typeof(CheckpointKillTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "CheckpointHelper").Value!;

    private const string CheckpointFile = "sdfp-training.checkpoint";

    private readonly string _folder = Directory.CreateTempSubdirectory("sdfp-checkpoint-kill-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Runs the helper (3 epochs on 64 images); returns its exit code, the epochs it ran and its score lines.</summary>
    private (int ExitCode, List<int> Epochs, List<string> Scores, string Output) Train(string checkpoint, params string[] kill)
    {
        Assert.True(File.Exists(Helper), $"checkpoint helper not built at {Helper}");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { Helper, fixture.TrainFolder, checkpoint }.Concat(kill))
            start.ArgumentList.Add(arg);
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(300_000), "checkpoint helper timed out");
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        List<int> epochs = lines.Where(l => l.StartsWith("epoch ", StringComparison.Ordinal)).Select(l => int.Parse(l[6..])).ToList();
        List<string> scores = lines.Where(l => l.Contains('\t')).ToList();
        return (process.ExitCode, epochs, scores, stdout + stderr.Result);
    }

    /// <summary>The scores of a run that was never interrupted, and an empty checkpoint folder.</summary>
    private (List<string> Scores, string Checkpoints) UninterruptedScoresAndAFolder()
    {
        var uninterrupted = Train("none");
        Assert.True(uninterrupted.ExitCode == 0, uninterrupted.Output);
        return (uninterrupted.Scores, Directory.CreateDirectory(Path.Combine(_folder, "checkpoints")).FullName);
    }

    private static void AssertKilled((int ExitCode, List<int> Epochs, List<string> Scores, string Output) run)
    {
        Assert.True(run.ExitCode == 128 + 9, $"expected death by SIGKILL (exit 137), got {run.ExitCode}:\n{run.Output}");
        Assert.Empty(run.Scores);
    }

    [Fact]
    public void A_process_killed_while_writing_a_checkpoint_resumes_from_the_previous_one_and_ends_bit_identical()
    {
        (List<string> expected, string checkpoints) = UninterruptedScoresAndAFolder();

        var killed = Train(checkpoints, "--kill-while-writing", "2");
        AssertKilled(killed);
        Assert.Contains("killed while writing", killed.Output);
        Assert.Equal([1], killed.Epochs); // epoch 2 was trained; its checkpoint was being written, so its callback never ran
        string[] left = Directory.GetFiles(checkpoints).Select(Path.GetFileName).ToArray()!;
        Assert.Contains(CheckpointFile, left);
        Assert.Contains(left, f => f.StartsWith('.')); // the torn temporary file, never renamed into place

        var resumed = Train(checkpoints);
        Assert.True(resumed.ExitCode == 0, resumed.Output);
        Assert.Equal([2, 3], resumed.Epochs);
        Assert.Equal(expected, resumed.Scores);
        // The next write removed the dead process's temporary file.
        Assert.Equal([CheckpointFile], Directory.GetFiles(checkpoints).Select(Path.GetFileName));
    }

    [Fact]
    public void A_process_killed_in_the_middle_of_an_epoch_resumes_at_that_epoch_and_ends_bit_identical()
    {
        (List<string> expected, string checkpoints) = UninterruptedScoresAndAFolder();

        var killed = Train(checkpoints, "--kill-during", "3");
        AssertKilled(killed);
        Assert.Equal([1, 2], killed.Epochs);

        var resumed = Train(checkpoints);
        Assert.True(resumed.ExitCode == 0, resumed.Output);
        Assert.Equal([3], resumed.Epochs);
        Assert.Equal(expected, resumed.Scores);
    }
}
