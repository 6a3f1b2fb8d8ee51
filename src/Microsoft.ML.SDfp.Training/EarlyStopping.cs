using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// Patience-based early stopping with best-weight restore, the criterion <see cref="TrainingOptions.EarlyStoppingPatience"/>
/// describes (ML.NET's <c>ImageClassificationTrainer.EarlyStopping</c> plays the same part).
/// </summary>
internal sealed class EarlyStopping : IDisposable
{
    private readonly TrainingOptions _options;
    private readonly WeightSnapshot? _best;
    private double? _bestMetric;
    private int _epochsWithoutImprovement;

    public EarlyStopping(TrainingOptions options, nn.Module model)
    {
        _options = options;
        // The copy costs a model's worth of memory, so it exists only when training can end past its best epoch.
        _best = options.EarlyStoppingPatience is null ? null : new WeightSnapshot(model, buffersOnly: false);
    }

    /// <summary>The best epoch so far: by the chosen validation metric when there is one, else the latest.</summary>
    public int BestEpoch { get; private set; }

    /// <summary>Records an epoch's metrics (keeping its weights when it is the best); true when training should stop after it.</summary>
    public bool Observe(EpochMetrics metrics)
    {
        var metric = _options.EarlyStoppingMetric == EarlyStoppingMetric.ValidationAccuracy ? metrics.ValidationAccuracy : metrics.ValidationLoss;
        if (metric is null)
        {
            BestEpoch = metrics.Epoch;
        }
        else if (_bestMetric is null || Improves(metric.Value, _bestMetric.Value))
        {
            _bestMetric = metric;
            BestEpoch = metrics.Epoch;
            _epochsWithoutImprovement = 0;
            _best?.Capture();
        }
        else
        {
            _epochsWithoutImprovement++;
        }

        return _options.EarlyStoppingPatience is { } patience && _epochsWithoutImprovement >= patience && metrics.Epoch < _options.Epochs;
    }

    /// <summary>Puts the best epoch's weights back when training ran past it; true when it did.</summary>
    public bool RestoreBest(int lastEpoch)
    {
        if (_best is not { Captured: true } || BestEpoch == lastEpoch)
            return false;
        _best.Restore();
        return true;
    }

    /// <summary>Writes the best epoch, the best metric, the patience count and the best weights, for a checkpoint.</summary>
    public void WriteState(BinaryWriter writer)
    {
        writer.Write(BestEpoch);
        writer.Write(_bestMetric.HasValue);
        writer.Write(_bestMetric ?? 0);
        writer.Write(_epochsWithoutImprovement);
        writer.Write(_best is { Captured: true });
        if (_best is { Captured: true })
            _best.Write(writer);
    }

    /// <summary>Restores what <see cref="WriteState"/> wrote.</summary>
    public void ReadState(BinaryReader reader)
    {
        BestEpoch = reader.ReadInt32();
        var hasMetric = reader.ReadBoolean();
        var metric = reader.ReadDouble();
        _bestMetric = hasMetric ? metric : null;
        _epochsWithoutImprovement = reader.ReadInt32();
        if (!reader.ReadBoolean())
            return;
        if (_best is null)
            throw new InvalidDataException("The checkpoint holds best weights, but this run does not use early stopping.");
        _best.Read(reader);
    }

    public void Dispose() => _best?.Dispose();

    private bool Improves(double candidate, double best) =>
        _options.EarlyStoppingMetric == EarlyStoppingMetric.ValidationAccuracy
            ? candidate > best + _options.EarlyStoppingMinDelta
            : candidate < best - _options.EarlyStoppingMinDelta;
}
