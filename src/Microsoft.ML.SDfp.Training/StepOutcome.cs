namespace Microsoft.ML.SDfp.Training;

/// <summary>A step's summed (slice-weighted) loss and correct count, or its failure.</summary>
internal readonly record struct StepOutcome(double Loss, long Correct, StepFailure? Failure);
