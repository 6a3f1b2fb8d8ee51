using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Scoring;
using Microsoft.ML.SDfp.Training;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;

namespace Microsoft.ML.SDfp.Trainers;

/// <summary>
/// Trains a ResNet image classifier in low precision (S-DFP by default) and returns an
/// <see cref="SDfpImageClassificationTransformer"/>. Create it with
/// <c>mlContext.MulticlassClassification.Trainers.SDfpImageClassification(...)</c>.
/// </summary>
/// <remarks>
/// <para>This estimator implements <see cref="IEstimator{TTransformer}"/> directly rather than deriving from ML.NET's
/// TrainerEstimatorBase: that base class assumes a float feature vector and row-at-a-time prediction through a value
/// mapper, while this trainer accepts encoded bytes, MLImages or float vectors and scores whole batches per forward
/// pass.</para>
/// <para>Images are decoded and resized once per <see cref="Fit"/>, into one tensor; every epoch reuses it.</para>
/// </remarks>
public sealed partial class SDfpImageClassificationTrainer : IEstimator<SDfpImageClassificationTransformer>
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(5);
    private readonly IHost _host;
    private readonly Options _options;

    internal SDfpImageClassificationTrainer(IHostEnvironment env, Options options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        _host = env.Register(nameof(SDfpImageClassificationTrainer));
        options.Validate();
        _options = options;
    }

    /// <summary>The settings this trainer was created with.</summary>
    public Options TrainerOptions => _options;

    /// <summary>Checks the input columns and describes the columns the fitted transformer will add.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!inputSchema.TryFindColumn(_options.LabelColumnName, out SchemaShape.Column label))
        {
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{_options.LabelColumnName}' not found in the input.");
        }

        if (!label.IsKey)
        {
            throw new ArgumentOutOfRangeException(nameof(inputSchema), TrainingSchema.NotKeyMessage(_options.LabelColumnName, label.ItemType));
        }

        if (!inputSchema.TryFindColumn(_options.FeatureColumnName, out SchemaShape.Column _))
        {
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Image column '{_options.FeatureColumnName}' not found in the input.");
        }

        var columns = inputSchema.ToDictionary(c => c.Name);
        var scoreAnnotations = new SchemaShape(new[]
        {
            new SchemaShape.Column(AnnotationUtils.Kinds.ScoreColumnSetId, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true),
            new SchemaShape.Column(AnnotationUtils.Kinds.ScoreColumnKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
            new SchemaShape.Column(AnnotationUtils.Kinds.ScoreValueKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
            new SchemaShape.Column(AnnotationUtils.Kinds.SlotNames, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false),
            new SchemaShape.Column(AnnotationUtils.Kinds.TrainingLabelValues, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false),
        });
        columns[_options.ScoreColumnName] = new SchemaShape.Column(_options.ScoreColumnName, SchemaShape.Column.VectorKind.Vector,
            NumberDataViewType.Single, false, scoreAnnotations);
        var keyAnnotations = new SchemaShape(new[]
        {
            new SchemaShape.Column(AnnotationUtils.Kinds.KeyValues, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false),
        });
        columns[_options.PredictedLabelColumnName] = new SchemaShape.Column(_options.PredictedLabelColumnName, SchemaShape.Column.VectorKind.Scalar,
            NumberDataViewType.UInt32, true, keyAnnotations);
        if (_options.EmbeddingColumnName is { } embedding)
        {
            columns[embedding] = new SchemaShape.Column(embedding, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        }

        return new SchemaShape(columns.Values);
    }

    /// <summary>
    /// Decodes the images, trains the network and returns the fitted transformer. Progress and per-epoch metrics go to
    /// <c>MLContext.Log</c>; <c>MLContext.CancelExecution()</c> stops training between steps with an
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    public SDfpImageClassificationTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TorchSharpRuntime.EnsureLoaded();
        var stage = DistributedStage.For(_options.Distributed);
        using IChannel ch = DistributedStage.StartChannel(stage, _host, "Training");
        var clock = Stopwatch.StartNew();

        DataViewSchema.Column labelColumn = TrainingSchema.CheckLabel(input.Schema, _options.LabelColumnName, "training data", input);
        LabelNames labelNames = LabelNames.FromKeyColumn(labelColumn)
            ?? throw new ArgumentOutOfRangeException(nameof(input),
                $"Label column '{labelColumn.Name}' is a key without KeyValues annotations; create it with MapValueToKey so the classes have names.");
        int classes = labelNames.Count;
        ImageColumnKind kind = ImageColumn.ResolveKind(input.Schema, _options.FeatureColumnName, _options.FeatureVectorShape, out ImageInputShape vectorShape);
        if (_options.ValidationSet is { } validationView)
        {
            TrainingSchema.CheckValidationSet(_options, input.Schema, validationView.Schema, labelNames, kind, vectorShape);
        }

        string? pathColumn = ImageColumn.ResolvePathColumnName(input.Schema, _options.ImagePathColumnName);
        int width = _options.ImageWidth, height = _options.ImageHeight;

        DecodedImages train = Decode(input, "training data", kind, vectorShape, width, height, pathColumn, classes, stage);
        train.ReportUndecodable(ch, "training data");
        if (train.Count == 0)
        {
            throw new InvalidOperationException(train.SkippedMissingLabels > 0
                ? $"The training data has no row with a label: all {train.SkippedMissingLabels} rows have a missing value in label column '{labelColumn.Name}'."
                : $"The training data is empty: no rows to train on (label column '{labelColumn.Name}', image column '{_options.FeatureColumnName}').");
        }

        if (train.SkippedMissingLabels > 0)
        {
            ch.Warning($"Skipped {train.SkippedMissingLabels} training rows with a missing label in column '{labelColumn.Name}'.");
        }

        int channels = _options.ImageChannels ?? (stage is null ? (train.AllGrey ? 1 : 3) : stage.AgreeChannels(train.AllGrey ? 1 : 3));
        var inputShape = new ImageInputShape(channels, height, width);
        long seed = _options.Seed ?? ((_host as IHostEnvironmentInternal)?.Seed ?? 1);

        DecodedImages? validation = null;
        if (_options.ValidationSet is { } validationSet)
        {
            validation = Decode(validationSet, "validation set", kind, vectorShape, width, height, pathColumn, classes, shard: null);
            validation.ReportUndecodable(ch, "validation set");
        }

        float[] trainPixels = train.ToChannels(channels);
        (float[] mean, float[] std) = ChannelStatistics.Compute(trainPixels, inputShape);
        // Distributed: rank 0's shard, a 1/P sample of the rows, sets the normalisation of every rank's network.
        stage?.FromRankZero(mean);
        stage?.FromRankZero(std);
        var network = new SDfpNetwork(CreateModel(inputShape, classes, seed), inputShape, mean, std);
        ChannelStatistics.NormalizeAll(network, trainPixels, train.Count);
        float[]? validationPixels = validation?.ToChannels(channels);
        if (validationPixels is not null)
        {
            ChannelStatistics.NormalizeAll(network, validationPixels, validation!.Count);
        }

        ch.Info($"Decoded {train.Count} training images{(validation is not null ? $" and {validation.Count} validation images" : string.Empty)} to {inputShape} in {clock.Elapsed.TotalSeconds:F1}s; {classes} classes; {_options.Architecture}, {network.Model.Options.Quantization.Layers}.");

        try
        {
            using ImageDataset all = ValidationSplit.MakeDataset(trainPixels, train.Labels, train.Count, inputShape, classes);
            (ImageDataset trainSet, ImageDataset? validationSetData, bool ownsSplit) = ValidationSplit.Split(_options, all, validationPixels, validation, inputShape, classes, seed, ch);
            try
            {
                Train(ch, network, trainSet, validationSetData, seed);
                using var scope = torch.NewDisposeScope();
                torch.Tensor calibration = CalibrationSample(trainSet, seed);
                network.Freeze(calibrationImages: stage is null ? calibration : stage.FromRankZero(calibration), calibrationBatchSize: Math.Max(2, _options.BatchSize),
                    keepMasterWeights: _options.KeepMasterWeights);
            }
            finally
            {
                if (ownsSplit)
                {
                    trainSet.Dispose();
                }

                validationSetData?.Dispose();
            }
        }
        catch
        {
            network.Dispose();
            throw;
        }

        ch.Info($"Training finished in {clock.Elapsed.TotalSeconds:F1}s.");
        return new SDfpImageClassificationTransformer(_host, network, labelNames, kind, vectorShape, _options.FeatureColumnName, pathColumn,
            _options.ScoreColumnName, _options.PredictedLabelColumnName, _options.EmbeddingColumnName, _options.ScoringBatchSize);
    }

    private void Train(IChannel ch, SDfpNetwork network, ImageDataset trainSet, ImageDataset? validationSet, long seed)
    {
        ResNetModel model = network.Model;
        QuantizationTelemetry? telemetry = null;
        if (!model.Options.Quantization.Layers.IsFp32)
        {
            int stepsPerEpoch = (int)Math.Max(1, trainSet.Count / Math.Max(1, Math.Min(_options.BatchSize, trainSet.Count)));
            // Full statistics a few times per epoch are enough for the per-epoch summary and cost little.
            telemetry = new QuantizationTelemetry { SampleEvery = Math.Max(1, stepsPerEpoch / 4) };
            model.Telemetry = telemetry;
        }

        var trainer = new ImageClassifierTrainer(model, _options.ToTrainingOptions(seed));
        var warned = new HashSet<TensorRole>();
        using var cancellation = new CancellationTokenSource();
        var lastProgress = Stopwatch.StartNew();
        trainer.StepCompleted += progress =>
        {
            if (IsCanceled())
            {
                cancellation.Cancel();
            }

            if (lastProgress.Elapsed >= ProgressInterval)
            {
                lastProgress.Restart();
                ch.Info($"epoch {progress.Epoch} step {progress.Step}/{progress.StepsPerEpoch}: loss {progress.Loss:F4}, {progress.ImagesPerSecond:F0} img/s, ETA {progress.Eta:hh\\:mm\\:ss}");
            }
        };
        trainer.EpochCompleted += metrics =>
        {
            ch.Info(metrics.ToString());
            WarnSaturation(ch, telemetry, metrics.Epoch, warned);
            _options.MetricsCallback?.Invoke(metrics);
        };

        try
        {
            if (IsCanceled())
            {
                throw new OperationCanceledException($"{CancelMessage} before it started.");
            }

            TrainingResult result = trainer.Fit(trainSet, validationSet, cancellation.Token);
            if (result.StoppedEarly)
            {
                ch.Info($"Stopped early after epoch {result.Epochs.Count}; kept the weights of epoch {result.BestEpoch}.");
            }
        }
        catch (OperationCanceledException ex) when (IsCanceled())
        {
            throw new OperationCanceledException($"{CancelMessage}.", ex);
        }
        catch (TrainingDivergedException ex)
        {
            // The loop's own advice names TrainingOptions, which these Options do not expose.
            string where = ex.Layer is null ? string.Empty : ex.Role is null ? $" in layer '{ex.Layer}'" : $" in layer '{ex.Layer}' ({ex.Role})";
            throw new InvalidOperationException(
                $"Training diverged at epoch {ex.Epoch}, step {ex.Step}: non-finite {ex.Source}{where}. Try a lower Options.LearningRate " +
                $"(now {_options.LearningRate}), more Options.WarmupEpochs, smaller shifts (Options.WeightShift/ActivationShift/ErrorShift), " +
                "or check the input images.", ex);
        }
        finally
        {
            model.Telemetry = null;
            if (telemetry is not null && _options.TelemetryOutputPath is { } path)
            {
                telemetry.WriteCsv(path);
                ch.Info($"Wrote quantisation telemetry to '{path}'.");
            }
        }
    }

    /// <summary>Up to 2048 training images in a seeded random order (class folders arrive sorted), for calibration.</summary>
    private static torch.Tensor CalibrationSample(ImageDataset train, long seed)
    {
        using var generator = new torch.Generator(unchecked((ulong)seed + 104729));
        torch.Tensor order = torch.randperm(train.Count, generator: generator);
        return train.Images.index_select(0, order.slice(0, 0, Math.Min(train.Count, 2048), 1));
    }

    private bool IsCanceled() => _options.CancellationToken.IsCancellationRequested || _host is ICancelable { IsCanceled: true };

    private string CancelMessage => _options.CancellationToken.IsCancellationRequested
        ? "Training was cancelled through Options.CancellationToken"
        : "Training was cancelled by MLContext.CancelExecution()";

    /// <summary>Share of a tensor's values clipped at the format's largest value above which training rarely recovers.</summary>
    internal const double SaturationWarningFraction = 0.5;

    // A shift too large for the bit width (e.g. ErrorShift = 8 at 8 bits) clips most values and trains to chance with
    // no error; the telemetry shows it from the first epoch. Only sampled steps carry full statistics (others have NaN
    // saturation), so each (layer, role)'s latest sampled record is used.
    private void WarnSaturation(IChannel ch, QuantizationTelemetry? telemetry, int epoch, HashSet<TensorRole> warned)
    {
        if (telemetry is null)
        {
            return;
        }

        var worst = telemetry.Records.Where(s => double.IsFinite(s.SaturatedFraction))
            .GroupBy(s => (s.Layer, s.Role)).Select(g => g.Last())
            .Where(s => s.SaturatedFraction > SaturationWarningFraction && !warned.Contains(s.Role))
            .GroupBy(s => s.Role).Select(g => g.MaxBy(s => s.SaturatedFraction)!);
        foreach (var record in worst)
        {
            warned.Add(record.Role);
            string option = record.Role switch
            {
                TensorRole.Weight => nameof(Options.WeightShift),
                TensorRole.Activation => nameof(Options.ActivationShift),
                _ => nameof(Options.ErrorShift),
            };
            ch.Warning($"Epoch {epoch}: {record.SaturatedFraction:P0} of the {record.Role} values of layer '{record.Layer}' saturate at the " +
                $"largest {_options.Bits}-bit value (shift {record.Shift}); training usually fails to learn like this. Lower Options.{option}.");
        }
    }

    private ResNetModel CreateModel(ImageInputShape shape, int classes, long seed)
    {
        // Same seed, same initial weights: the model is created before ImageClassifierTrainer seeds torch itself.
        torch.manual_seed(seed);
        return ResNetFactory.Create(new ResNetOptions
        {
            Architecture = _options.Architecture,
            NumClasses = classes,
            InputChannels = shape.Channels,
            SmallImageStem = !ResNetFactory.IsCifarStyle(_options.Architecture) && Math.Min(shape.Height, shape.Width) <= 64,
            Quantization = _options.ToQuantizationPolicy(),
        });
    }

    private DecodedImages Decode(IDataView data, string what, ImageColumnKind kind, ImageInputShape vectorShape, int width, int height,
        string? pathColumn, int classes, DistributedStage? shard)
    {
        var columns = new List<DataViewSchema.Column> { data.Schema[_options.LabelColumnName], data.Schema[_options.FeatureColumnName] };
        DataViewSchema.Column? path = pathColumn is null ? null : ImageColumn.FindPath(data.Schema, pathColumn);
        if (path is not null)
        {
            columns.Add(path.Value);
        }

        var result = new DecodedImages(3 * width * height);
        using DataViewRowCursor cursor = data.GetRowCursor(columns);
        var reader = new ImageFeatureReader(cursor, _options.FeatureColumnName, kind, vectorShape, width, height, path);
        ValueGetter<uint> labelGetter = cursor.GetGetter<uint>(data.Schema[_options.LabelColumnName]);
        uint key = 0;
        var rgb = new float[reader.RgbSize];
        while (cursor.MoveNext())
        {
            // Per image: one large image can take a second to decode.
            if (IsCanceled())
            {
                throw new OperationCanceledException($"{CancelMessage} while decoding the {what}.");
            }

            if (shard is not null && !shard.Owns(cursor.Position))
            {
                continue; // another rank's row: not even read
            }

            labelGetter(ref key);
            if (key == 0 || key > classes)
            {
                result.SkippedMissingLabels++;
                continue;
            }

            bool grey;
            try
            {
                grey = reader.Read(rgb, cursor.Position);
            }
            catch (ImageDecodeException ex) when (_options.SkipUndecodableImages)
            {
                result.Undecodable.Add(ex.Path ?? $"row {ex.Row}");
                continue;
            }

            result.Add(rgb, key - 1, grey);
        }

        return result;
    }
}
