using System.Diagnostics;
using Microsoft.ML.SDfp.Training;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>Prints training progress for one run: a step line at most every few seconds, and a line per epoch.</summary>
internal sealed class ConsoleProgress
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
    private readonly string _name;
    private readonly int _epochs;
    private readonly Stopwatch _sinceLast = Stopwatch.StartNew();
    private readonly List<EpochMetrics> _finished = new();

    public ConsoleProgress(string name, int epochs)
    {
        _name = name;
        _epochs = epochs;
    }

    /// <summary>Epochs finished so far (kept for runs that end with an exception).</summary>
    public IReadOnlyList<EpochMetrics> Epochs => _finished;

    public void OnStep(StepProgress p)
    {
        if (_sinceLast.Elapsed < Interval && p.Step != 1)
            return;
        _sinceLast.Restart();
        FashionMnistExperiment.Log($"[{_name}] epoch {p.Epoch}/{_epochs} step {p.Step}/{p.StepsPerEpoch} loss {p.Loss:F4} lr {p.LearningRate:F4} {p.ImagesPerSecond:F0} img/s ETA {p.Eta:hh\\:mm\\:ss}{(p.Skipped ? " (skipped)" : "")}");
    }

    public void OnEpoch(EpochMetrics m)
    {
        _finished.Add(m);
        FashionMnistExperiment.Log($"[{_name}] epoch {m.Epoch}/{_epochs} done: train loss {m.TrainLoss:F4} acc {m.TrainAccuracy:P2}, test loss {m.ValidationLoss:F4} acc {m.ValidationAccuracy:P2}, " +
            $"{m.ImagesPerSecond:F0} img/s, RSS {m.ResidentBytes / 1048576.0:F0} MiB, elapsed {m.Elapsed:hh\\:mm\\:ss}");
    }
}
