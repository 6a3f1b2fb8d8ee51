namespace Microsoft.ML.SDfp.Training;

/// <summary>Progress after one optimizer step, raised through <see cref="ImageClassifierTrainer.StepCompleted"/>.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Step">1-based step within the epoch.</param>
/// <param name="StepsPerEpoch">Steps in every epoch.</param>
/// <param name="Loss">Mean training cross-entropy of this step's batch (NaN when the step was skipped).</param>
/// <param name="ImagesPerSecond">Training throughput of this epoch so far (augmentation, forward, backward and update).</param>
/// <param name="Eta">Estimated time until the last step of the last epoch, from the mean step time so far (validation not included).</param>
public sealed record StepProgress(int Epoch, int Step, int StepsPerEpoch, double Loss, double ImagesPerSecond, TimeSpan Eta)
{
    /// <summary>0-based optimizer step counted over the whole run.</summary>
    public long GlobalStep { get; init; }

    /// <summary>The learning rate used for this step.</summary>
    public double LearningRate { get; init; }

    /// <summary>True when the step was dropped under <see cref="NonFiniteLossPolicy.SkipStep"/>.</summary>
    public bool Skipped { get; init; }
}
