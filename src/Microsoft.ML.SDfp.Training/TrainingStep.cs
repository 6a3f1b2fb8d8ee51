using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Training.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// One optimizer step on one batch: forward and backward (split over the replicas when there are any), the gradient
/// exchange between ranks, the finiteness checks, and either the update or, for a non-finite step, no trace at all.
/// </summary>
internal sealed class TrainingStep : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly IReadOnlyList<(string name, Parameter parameter)> _parameters;
    private readonly SGD _optimizer;
    private readonly WeightSnapshot? _bufferBackup;
    private readonly DataParallelReplicas? _replicas;
    private readonly DistributedTraining? _distributed;

    public TrainingStep(nn.Module<Tensor, Tensor> model, TrainingOptions options, IReadOnlyList<(string name, Parameter parameter)> parameters,
        DataParallelReplicas? replicas, DistributedTraining? distributed)
    {
        _model = model;
        _parameters = parameters;
        _replicas = replicas;
        _distributed = distributed;
        _optimizer = optim.SGD(parameters.Select(p => p.parameter), options.LearningRate,
            momentum: options.Momentum, dampening: 0, weight_decay: options.WeightDecay, nesterov: options.Nesterov);
        // Only a skipped step needs batch norm's statistics from before it.
        _bufferBackup = options.NonFinitePolicy == NonFiniteLossPolicy.SkipStep ? new WeightSnapshot(model, buffersOnly: true) : null;
    }

    /// <summary>Trains on <paramref name="images"/> at <paramref name="learningRate"/>.</summary>
    public StepOutcome Run(Tensor images, Tensor labels, double learningRate)
    {
        foreach (var group in _optimizer.ParamGroups)
            group.LearningRate = learningRate;
        _optimizer.zero_grad();
        _bufferBackup?.Capture();

        var length = images.shape[0];
        // Every slice keeps at least two images, so that batch norm has statistics to normalise with.
        var slices = _replicas is null ? 1 : (int)Math.Max(1, Math.Min(_replicas.Replicas.Count + 1, length / 2));
        var results = new StepOutcome[slices];
        if (slices == 1)
        {
            results[0] = RunSlice(_model, images, labels, 1.0);
        }
        else
        {
            DataParallelReplicas.RunConcurrently(slices, slice =>
            {
                using var sliceScope = NewDisposeScope();
                var sliceStart = length * slice / slices;
                var sliceLength = length * (slice + 1) / slices - sliceStart;
                var model = slice == 0 ? _model : _replicas!.Replicas[slice - 1];
                results[slice] = RunSlice(model, images.narrow(0, sliceStart, sliceLength), labels.narrow(0, sliceStart, sliceLength), sliceLength / (double)length);
            });
        }

        var failure = results.Select(r => r.Failure).FirstOrDefault(f => f is not null);
        if (failure is null)
            _replicas?.ReduceGradients();
        // Every rank takes part in the exchange even after a local failure, which it sends as NaN: all ranks then see
        // a non-finite gradient and skip (or stop) together.
        _distributed?.ExchangeGradients(localFailure: failure is not null);
        failure ??= StepFailure.FromGradients(_parameters);
        if (failure is not null)
        {
            // Leave no trace of the bad batch: no update, and batch-norm statistics as they were.
            _optimizer.zero_grad();
            _replicas?.ZeroGradients();
            _bufferBackup?.Restore();
            _replicas?.Synchronize();
            return new StepOutcome(double.NaN, 0, failure);
        }

        _replicas?.AverageBuffers(slices - 1);
        _optimizer.step();
        _replicas?.Synchronize();
        return new StepOutcome(results.Sum(r => r.Loss), results.Sum(r => r.Correct), null);
    }

    /// <summary>Writes the optimizer's state (momentum buffers), for a checkpoint.</summary>
    public void WriteState(BinaryWriter writer) => _optimizer.save_state_dict(writer);

    /// <summary>Restores what <see cref="WriteState"/> wrote.</summary>
    public void ReadState(BinaryReader reader) => _optimizer.load_state_dict(reader);

    public void Dispose()
    {
        _bufferBackup?.Dispose();
        _optimizer.Dispose();
    }

    /// <summary>Forward and backward of one model on one slice of the batch; the loss is weighted by the slice's share of the batch.</summary>
    private static StepOutcome RunSlice(nn.Module<Tensor, Tensor> model, Tensor images, Tensor labels, double weight)
    {
        try
        {
            var logits = model.call(images);
            var lossTensor = nn.functional.cross_entropy(logits, labels);
            var loss = (double)lossTensor.item<float>();
            if (!double.IsFinite(loss))
                return new StepOutcome(double.NaN, 0, StepFailure.Loss);
            var correct = logits.argmax(1).eq(labels).sum().item<long>();
            // Not loss.backward(): a quantised layer's failure inside libtorch's backward comes back from here as itself.
            QuantizedBackward.Backward(weight == 1.0 ? lossTensor : lossTensor * weight);
            return new StepOutcome(loss * weight, correct, null);
        }
        catch (Exception e) when (StepFailure.From(e) is { } found)
        {
            return new StepOutcome(double.NaN, 0, found);
        }
    }
}
