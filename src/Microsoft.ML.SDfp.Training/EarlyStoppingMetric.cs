namespace Microsoft.ML.SDfp.Training;

/// <summary>The validation metric that early stopping watches.</summary>
public enum EarlyStoppingMetric
{
    /// <summary>Validation accuracy; higher is better.</summary>
    ValidationAccuracy,

    /// <summary>Mean validation cross-entropy; lower is better.</summary>
    ValidationLoss,
}
