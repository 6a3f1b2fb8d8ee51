namespace Microsoft.ML.SDfp.Training;

/// <summary>How the learning rate changes after the optional linear warm-up.</summary>
public enum LearningRateSchedule
{
    /// <summary>The base learning rate for every step.</summary>
    Constant,

    /// <summary>
    /// Multiply the base rate by <see cref="TrainingOptions.StepGamma"/> every
    /// <see cref="TrainingOptions.StepSize"/> epochs, counted from the first epoch (as torch's StepLR).
    /// </summary>
    Step,

    /// <summary>Half a cosine from the base rate down to zero over the steps after warm-up.</summary>
    Cosine,
}
