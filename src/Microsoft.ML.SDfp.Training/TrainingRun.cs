using System.Diagnostics;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// The state of one <see cref="ImageClassifierTrainer.Fit"/> call between epochs: the batch plan, the schedule, the
/// shuffle and augmentation stream, the replicas or ranks, and the clocks. Runs one epoch at a time.
/// </summary>
internal sealed class TrainingRun : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly TrainingOptions _options;
    private readonly ImageDataset _train;
    private readonly ImageDataset? _validation;
    private readonly DistributedTraining? _distributed;
    private readonly Action<StepProgress> _stepCompleted;
    private readonly QuantizationTelemetry? _telemetry;
    private readonly Generator _generator;
    private readonly BatchAugmentation _augmentation;
    private readonly DataParallelReplicas? _replicas;
    private readonly TrainingStep _step;
    private readonly LearningRateScheduler _scheduler;
    private readonly ThroughputMeter _meter = new();
    private readonly Stopwatch _total = Stopwatch.StartNew();
    private readonly long _count;
    private readonly int _batchSize;
    private long _globalStep;

    public TrainingRun(nn.Module<Tensor, Tensor> model, ResNetModel? resNet, TrainingOptions options, ImageDataset train, ImageDataset? validation,
        IReadOnlyList<(string name, Parameter parameter)> parameters, DistributedTraining? distributed, Action<StepProgress> stepCompleted)
    {
        _model = model;
        _options = options;
        _train = train;
        _validation = validation;
        _distributed = distributed;
        _stepCompleted = stepCompleted;
        _telemetry = resNet?.Telemetry;

        // Distributed: every rank uses as many images of its shard as the smallest shard has, BatchSize / P at a time.
        _count = distributed?.ShardCount ?? train.Count;
        _batchSize = (int)Math.Min(options.BatchSize / (distributed?.Size ?? 1), _count);
        // A trailing batch of one image is dropped: batch norm cannot normalise a single sample in train mode.
        StepsPerEpoch = (int)(_count / _batchSize + (_count % _batchSize >= 2 ? 1 : 0));
        _scheduler = new LearningRateScheduler(options, StepsPerEpoch);

        torch.manual_seed(options.Seed);
        // Each rank shuffles and augments its shard with its own stream; rank 0's is that of a single process.
        _generator = new Generator(unchecked((ulong)options.Seed + 1_000_003UL * (ulong)(distributed?.Rank ?? 0)));
        _augmentation = new BatchAugmentation(options.RandomCrop, options.CropPadding, options.HorizontalFlip, _generator, options.CropPaddingValue);
        _replicas = options.Replicas > 1 ? new DataParallelReplicas((ResNetModel)model, options.Replicas - 1) : null;
        _step = new TrainingStep(model, options, parameters, _replicas, distributed);
    }

    public int StepsPerEpoch { get; }

    /// <summary>Trains one epoch, then validates; throws <see cref="TrainingDivergedException"/> as the options say.</summary>
    public EpochMetrics RunEpoch(int epoch, CancellationToken cancellationToken)
    {
        _model.train();
        _replicas?.Train(true);
        var (lossSum, correct, seen, skipped, learningRate) = TrainEpoch(epoch, cancellationToken);
        if (skipped == StepsPerEpoch)
            throw new TrainingDivergedException(epoch, StepsPerEpoch, "loss or gradient in every step of the epoch (all steps skipped)");

        if (_distributed is not null)
        {
            _distributed.AverageBuffers(_model);
            (lossSum, correct, seen) = _distributed.SumEpoch(lossSum, correct, seen);
        }
        var imagesPerSecond = _meter.PerSecond(seen);
        if (_options.BatchNormRecalibrationBatches > 0)
        {
            BatchNormRecalibration.Run(_model, _train, _options.BatchNormRecalibrationBatches, _batchSize, _options.Seed, epoch);
            _distributed?.AverageBuffers(_model);
            _replicas?.Synchronize();
        }
        var (validationLoss, validationAccuracy) = Validate(cancellationToken);
        return new EpochMetrics(epoch, seen > 0 ? lossSum / seen : double.NaN, seen > 0 ? (double)correct / seen : double.NaN,
            validationLoss, validationAccuracy, learningRate, imagesPerSecond, _total.Elapsed,
            _telemetry?.Latest() ?? Array.Empty<TensorStatistics>())
        {
            SkippedSteps = skipped,
            TrainingTime = _meter.EpochTime,
            ResidentBytes = ProcessMemory.ResidentBytes(),
            WorstSaturationByRole = _telemetry?.WorstSaturationByRole() ?? new Dictionary<TensorRole, double>(),
        };
    }

    /// <summary>Writes what the following epochs depend on, for a checkpoint (see <see cref="TrainingCheckpoint"/>).</summary>
    public void WriteState(BinaryWriter writer)
    {
        writer.Write(_globalStep);
        TrainingCheckpoint.WriteModel(writer, _model);
        foreach (var replica in _replicas?.Replicas ?? [])
            TrainingCheckpoint.WriteModel(writer, replica);
        _step.WriteState(writer);
        using var state = _generator.get_state();
        TrainingCheckpoint.WriteTensor(writer, state);
    }

    /// <summary>Restores what <see cref="WriteState"/> wrote.</summary>
    public void ReadState(BinaryReader reader)
    {
        _globalStep = reader.ReadInt64();
        TrainingCheckpoint.ReadModel(reader, _model);
        foreach (var replica in _replicas?.Replicas ?? [])
            TrainingCheckpoint.ReadModel(reader, replica);
        _step.ReadState(reader);
        using var state = _generator.get_state();
        TrainingCheckpoint.ReadInto(reader, state, "the shuffle generator");
        _generator.set_state(state);
    }

    public void Dispose()
    {
        _step.Dispose();
        _replicas?.Dispose();
        _generator.Dispose();
    }

    private (double LossSum, long Correct, long Seen, int Skipped, double LearningRate) TrainEpoch(int epoch, CancellationToken cancellationToken)
    {
        using var threads = ReplicaThreadScope.Enter(_options.Replicas);
        using var epochScope = NewDisposeScope();
        var order = randperm(_count, generator: _generator);
        double lossSum = 0, learningRate = 0;
        long correct = 0, seen = 0;
        var skipped = 0;
        _meter.StartEpoch();
        for (var step = 0; step < StepsPerEpoch; step++, _globalStep++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _meter.StartStep();
            var start = (long)step * _batchSize;
            var length = Math.Min(_batchSize, _count - start);
            learningRate = _scheduler.At(_globalStep);
            if (_telemetry is not null)
                _telemetry.Step = _globalStep;

            StepOutcome outcome;
            using (NewDisposeScope())
            {
                var indices = order.narrow(0, start, length);
                var images = _augmentation.Apply(_train.Images.index_select(0, indices));
                outcome = _step.Run(images, _train.Labels.index_select(0, indices), learningRate);
            }
            QuantizedBackward.EndStep();
            _meter.EndStep(length);

            if (outcome.Failure is { } failure)
            {
                if (_options.NonFinitePolicy == NonFiniteLossPolicy.Throw)
                    throw failure.ToException(epoch, step + 1);
                skipped++;
            }
            else
            {
                lossSum += outcome.Loss * length;
                correct += outcome.Correct;
                seen += length;
            }

            _stepCompleted(new StepProgress(epoch, step + 1, StepsPerEpoch, outcome.Failure is null ? outcome.Loss : double.NaN,
                _meter.ImagesPerSecond, _meter.Eta(_scheduler.TotalSteps - (_globalStep + 1)))
            {
                GlobalStep = _globalStep,
                LearningRate = learningRate,
                Skipped = outcome.Failure is not null,
            });
        }
        return (lossSum, correct, seen, skipped, learningRate);
    }

    /// <summary>Validation loss and accuracy, computed on rank 0 and shared with the other ranks; nulls without a validation set.</summary>
    private (double? Loss, double? Accuracy) Validate(CancellationToken cancellationToken)
    {
        double? loss = null, accuracy = null;
        if (_validation is not null && (_distributed?.Rank ?? 0) == 0)
            (loss, accuracy) = ClassifierEvaluation.Evaluate(_model, _validation, _options.EvaluationBatchSize, cancellationToken);
        return _distributed is null ? (loss, accuracy) : _distributed.ShareValidation(loss, accuracy);
    }
}
