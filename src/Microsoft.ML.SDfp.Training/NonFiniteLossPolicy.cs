namespace Microsoft.ML.SDfp.Training;

/// <summary>What the trainer does when a step produces NaN or infinity.</summary>
/// <remarks>
/// A step is non-finite when the loss is NaN/Inf, when any parameter gradient is NaN/Inf, or when a
/// quantised layer reports a NaN/Inf tensor (<c>NonFiniteTensorException</c>).
/// </remarks>
public enum NonFiniteLossPolicy
{
    /// <summary>Stop training with a <see cref="TrainingDivergedException"/> naming the epoch, step and, when known, the layer and role.</summary>
    Throw,

    /// <summary>
    /// Drop the step: no optimizer update, and batch-norm running statistics are put back to their values
    /// before the step, so a bad batch leaves no trace. Training continues with the next batch. The count
    /// appears in <see cref="EpochMetrics.SkippedSteps"/>. If every step of an epoch is skipped the model
    /// cannot learn anything, and training stops with a <see cref="TrainingDivergedException"/>.
    /// </summary>
    SkipStep,
}
