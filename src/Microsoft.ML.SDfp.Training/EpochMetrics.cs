using Microsoft.ML.SDfp.Numerics.Formats;
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

    /// <summary>Resident set size of the process at the end of the epoch, in bytes.</summary>
    public long ResidentBytes { get; init; }

    /// <summary>
    /// For each quantised tensor role, the largest fraction of values clipped at the format's range over all layers
    /// (see <see cref="QuantizationTelemetry.WorstSaturationByRole"/>). Empty for FP32 or without telemetry.
    /// </summary>
    public IReadOnlyDictionary<TensorRole, double> WorstSaturationByRole { get; init; } = new Dictionary<TensorRole, double>();

    /// <summary>One line for logs, e.g. "epoch 3: loss 0.4123 acc 85.10% val 86.20% lr 0.0500 812 img/s sat W 0.00% A 0.12%".</summary>
    public override string ToString()
    {
        string val = ValidationAccuracy is double va ? $" val {va:P2}" : string.Empty;
        string sat = string.Concat(WorstSaturationByRole.OrderBy(kv => kv.Key).Select(kv => $" {RoleLetter(kv.Key)} {kv.Value:P2}"));
        return $"epoch {Epoch}: loss {TrainLoss:F4} acc {TrainAccuracy:P2}{val} lr {LearningRate:F4} {ImagesPerSecond:F0} img/s{(sat.Length > 0 ? " sat" + sat : string.Empty)}";
    }

    private static string RoleLetter(TensorRole role) => role switch
    {
        TensorRole.Weight => "W",
        TensorRole.Activation => "A",
        TensorRole.Error => "G",
        _ => "WG",
    };
}
