using Microsoft.ML.SDfp.Numerics.Formats;

namespace Microsoft.ML.SDfp.Trainers;

/// <summary>What <see cref="SDfpImageClassificationTrainer.Options.MetricsCallback"/> receives after every epoch.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="TrainLoss">Mean cross-entropy over the epoch's training batches.</param>
/// <param name="TrainAccuracy">Fraction of training images classified correctly during the epoch.</param>
/// <param name="ValidationLoss">Cross-entropy on the validation set, or null without one.</param>
/// <param name="ValidationAccuracy">Accuracy on the validation set, or null without one.</param>
/// <param name="LearningRate">Learning rate at the end of the epoch.</param>
/// <param name="ImagesPerSecond">Training throughput of the epoch.</param>
/// <param name="Elapsed">Wall time of the epoch.</param>
/// <param name="WorstSaturationByRole">
/// For each quantised tensor role, the largest fraction of values clipped at the format's range over all layers
/// (latest telemetry record per layer). Empty for FP32 or when telemetry recorded nothing.
/// </param>
public sealed record SDfpEpochMetrics(
    int Epoch,
    double TrainLoss,
    double TrainAccuracy,
    double? ValidationLoss,
    double? ValidationAccuracy,
    double LearningRate,
    double ImagesPerSecond,
    TimeSpan Elapsed,
    IReadOnlyDictionary<TensorRole, double> WorstSaturationByRole)
{
    /// <summary>One line for logs, e.g. "epoch 3: loss 0.4123 acc 85.10% val 86.20% lr 0.0500 sat W 0.00% A 0.12%".</summary>
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
