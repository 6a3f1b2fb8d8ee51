namespace Microsoft.ML.SDfp.Training;

/// <summary>What one rank of a distributed training run reports.</summary>
/// <param name="Rank">This process's rank; rank 0 is the one that should log and save.</param>
/// <param name="Ranks">The number of processes.</param>
/// <param name="GradientBytesPerStep">Bytes of gradients this rank hands to MPI per step in the chosen exchange format.</param>
/// <param name="Fp32GradientBytesPerStep">The same with FP32 exchange, for comparison.</param>
public sealed record DistributedTrainingResult(int Rank, int Ranks, long GradientBytesPerStep, long Fp32GradientBytesPerStep);
