namespace Microsoft.ML.SDfp.Training;

/// <summary>The outcome of <see cref="ImageClassifierTrainer.Fit"/>.</summary>
/// <param name="Epochs">Metrics of every epoch that ran, in order.</param>
/// <param name="BestEpoch">
/// 1-based epoch with the best validation metric (<see cref="TrainingOptions.EarlyStoppingMetric"/>);
/// the last epoch when there is no validation set. With early stopping, the model holds this epoch's weights.
/// </param>
/// <param name="StoppedEarly">True when early stopping ended training before <see cref="TrainingOptions.Epochs"/>.</param>
public sealed record TrainingResult(IReadOnlyList<EpochMetrics> Epochs, int BestEpoch, bool StoppedEarly)
{
    /// <summary>True when the model's weights were put back to <see cref="BestEpoch"/>'s at the end of training.</summary>
    public bool RestoredBestWeights { get; init; }

    /// <summary>This rank and the gradient traffic, for distributed training (<see cref="TrainingOptions.Distributed"/>); null otherwise.</summary>
    public DistributedTrainingResult? Distributed { get; init; }
}
