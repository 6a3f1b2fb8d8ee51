namespace Microsoft.ML.SDfp.Distributed.Mpi;

/// <summary>The reductions this binding exposes (MPI's predefined <c>MPI_SUM</c>, <c>MPI_MAX</c>, <c>MPI_MIN</c>).</summary>
public enum MpiOperation
{
    /// <summary>Element-wise sum.</summary>
    Sum,

    /// <summary>Element-wise maximum.</summary>
    Max,

    /// <summary>Element-wise minimum.</summary>
    Min,
}
