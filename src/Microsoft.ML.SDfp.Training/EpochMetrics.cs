using Microsoft.ML.SDfp.Numerics.Telemetry;

namespace Microsoft.ML.SDfp.Training;

/// <summary>Metrics of one finished epoch, raised through <see cref="ImageClassifierTrainer.EpochCompleted"/>.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="TrainLoss">Mean cross-entropy over this epoch's training batches (augmented, train mode, before each update; skipped steps excluded).</param>
/// <param name="TrainAccuracy">Fraction of this epoch's training images classified right, measured like <paramref name="TrainLoss"/>.</param>
/// <param name="ValidationLoss">Mean cross-entropy on the validation set in eval mode, or null without one.</param>
/// <param name="ValidationAccuracy">Accuracy on the validation set in eval mode, or null without one.</param>
/// <param name="LearningRate">Learning rate of the epoch's last step.</param>
/// <param name="ImagesPerSecond">Training throughput of this epoch (validation excluded).</param>
/// <param name="Elapsed">Wall time since <see cref="ImageClassifierTrainer.Fit"/> started, validation included.</param>
/// <param name="Telemetry">Latest quantisation statistics per (layer, role) when the model has telemetry; empty otherwise.</param>
public sealed record EpochMetrics(
    int Epoch,
    double TrainLoss,
    double TrainAccuracy,
    double? ValidationLoss,
    double? ValidationAccuracy,
    double LearningRate,
    double ImagesPerSecond,
    TimeSpan Elapsed,
    IReadOnlyList<TensorStatistics> Telemetry)
{
    /// <summary>Steps dropped under <see cref="NonFiniteLossPolicy.SkipStep"/> in this epoch.</summary>
    public int SkippedSteps { get; init; }

    /// <summary>Wall time of this epoch's training steps alone.</summary>
    public TimeSpan TrainingTime { get; init; }

    /// <summary>Resident set size of the process at the end of the epoch, in bytes (see <see cref="ProcessMemory"/>).</summary>
    public long ResidentBytes { get; init; }
}
