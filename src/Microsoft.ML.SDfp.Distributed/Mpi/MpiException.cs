namespace Microsoft.ML.SDfp.Distributed.Mpi;

/// <summary>An MPI call returned an error code (the binding sets <c>MPI_ERRORS_RETURN</c>, so errors never abort).</summary>
public sealed class MpiException : Exception
{
    /// <summary>Creates the exception for a failed call.</summary>
    /// <param name="call">The MPI function, e.g. <c>MPI_Bcast</c>.</param>
    /// <param name="errorCode">The code it returned.</param>
    /// <param name="errorString">The text of <c>MPI_Error_string</c> for that code.</param>
    public MpiException(string call, int errorCode, string errorString)
        : base($"{call} failed with MPI error {errorCode}: {errorString}")
    {
        Call = call;
        ErrorCode = errorCode;
        ErrorString = errorString;
    }

    /// <summary>The MPI function that failed.</summary>
    public string Call { get; }

    /// <summary>The MPI error code it returned.</summary>
    public int ErrorCode { get; }

    /// <summary>The library's description of <see cref="ErrorCode"/>.</summary>
    public string ErrorString { get; }
}
