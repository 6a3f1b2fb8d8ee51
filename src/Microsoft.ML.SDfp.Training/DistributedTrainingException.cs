namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// Distributed training cannot start or finish consistently: the ranks disagree about options or data, or their
/// models differ at the end. Every rank throws it with the same message, so no rank is left waiting.
/// </summary>
public sealed class DistributedTrainingException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DistributedTrainingException(string message) : base(message)
    {
    }
}
