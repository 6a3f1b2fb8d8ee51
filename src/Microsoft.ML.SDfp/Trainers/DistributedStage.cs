using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.Distributed.Mpi;
using Microsoft.ML.SDfp.Training;
using TorchSharp;

namespace Microsoft.ML.SDfp.Trainers;

/// <summary>
/// What the ML.NET stage does differently on one rank of an Open MPI job (<see cref="SDfpImageClassificationTrainer.Options.Distributed"/>):
/// decode only this rank's rows, and make every input of the model that is derived from data (channel count, channel
/// statistics, calibration images) rank 0's, so that every rank ends with the same model.
/// </summary>
internal sealed class DistributedStage
{
    private readonly MpiCommunicator _world;

    private DistributedStage(MpiCommunicator world) => _world = world;

    /// <summary>The rank's view of the job, or null for a single-process run.</summary>
    public static DistributedStage? For(DistributedTrainingOptions? options) => options is null ? null : new DistributedStage(MpiCommunicator.World);

    public int Rank => _world.Rank;

    /// <summary>True when this rank decodes and trains on row <paramref name="position"/> (rows i mod P = rank).</summary>
    public bool Owns(long position) => position % _world.Size == _world.Rank;

    /// <summary>
    /// The channel that logs: the stage's own on rank 0, and on other ranks one of a private context nobody listens to,
    /// so that a job's log is written once.
    /// </summary>
    public static IChannel StartChannel(DistributedStage? stage, IHost host, string name) =>
        stage is null || stage.Rank == 0 ? host.Start(name) : ((IHostEnvironment)new MLContext()).Register(nameof(SDfpImageClassificationTrainer)).Start(name);

    /// <summary>3 when any rank saw a colour image, else 1: a shard of grey images must not give its rank a 1-channel model.</summary>
    public int AgreeChannels(int channels) => _world.AllReduce(channels, MpiOperation.Max);

    /// <summary>Rank 0's values in <paramref name="values"/> on every rank.</summary>
    public void FromRankZero(float[] values) => _world.Broadcast(values.AsSpan(), root: 0);

    /// <summary>Rank 0's tensor (any float32 shape [N, ...] with the same trailing shape on every rank) on every rank.</summary>
    public torch.Tensor FromRankZero(torch.Tensor tensor)
    {
        Span<long> count = [tensor.shape[0]];
        _world.Broadcast(count, root: 0);
        var shape = tensor.shape.ToArray();
        shape[0] = count[0];
        var result = _world.Rank == 0 ? tensor.contiguous() : torch.empty(shape, torch.ScalarType.Float32);
        _world.Broadcast(result.bytes, root: 0);
        return result;
    }
}
