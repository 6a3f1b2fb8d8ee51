using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// Trains an image classifier (a <see cref="ResNetModel"/>, quantised or not) with SGD, a per-step learning-rate
/// schedule, batch augmentation, per-epoch validation and optional early stopping.
/// </summary>
/// <remarks>
/// <para>
/// Master weights, batch norm, the loss and the optimizer stay FP32; the model's quantised layers quantise their
/// own operands. The trainer writes nothing to the console: progress comes through <see cref="StepCompleted"/>
/// and <see cref="EpochCompleted"/>, both raised on the thread that calls <see cref="Fit"/>.
/// </para>
/// <para>
/// Speed: <see cref="Fit"/> tunes the process's C allocator to keep freed memory
/// (<see cref="NativeMemoryTuning.RetainFreedMemory"/>, which lets the process keep its peak heap) and ends every
/// step with <see cref="QuantizedBackward.EndStep"/>. Together they stop the page faults that otherwise made a
/// quantised step slower than an FP32 one; the measurements are in the Numerics README.
/// </para>
/// <para>
/// Reproducibility: <see cref="Fit"/> seeds torch's global generator with <see cref="TrainingOptions.Seed"/>
/// and draws the shuffle order and augmentation from its own generator with the same seed. Stochastic rounding
/// is seeded by the model's <c>QuantizationConfig.Seed</c>. With the same model initialisation (seed torch before
/// <c>ResNetFactory.Create</c>), the same seeds, the same thread count and the same machine, two runs give
/// bit-identical weights. TorchSharp 0.107 does not expose <c>torch.use_deterministic_algorithms</c>; libtorch's
/// CPU kernels used here are deterministic for a fixed thread count.
/// </para>
/// <para>
/// Memory: every step runs inside its own <see cref="DisposeScope"/>, so native memory stays flat across epochs.
/// </para>
/// </remarks>
public sealed class ImageClassifierTrainer
{
    private static readonly Regex NumericsMessage = new(@"Layer '(?<layer>[^']+)' role (?<role>\w+)", RegexOptions.CultureInvariant);

    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly ResNetModel? _resNet;

    /// <summary>Creates a trainer for <paramref name="model"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is invalid; the message names it.</exception>
    public ImageClassifierTrainer(ResNetModel model, TrainingOptions options)
        : this((nn.Module<Tensor, Tensor>)model, options)
    {
        _resNet = model;
    }

    /// <summary>For tests and small experiments: any module mapping [N, C, H, W] images to [N, classes] logits.</summary>
    internal ImageClassifierTrainer(nn.Module<Tensor, Tensor> model, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.Replicas > 1 && model is not ResNetModel)
            throw new ArgumentException($"TrainingOptions.Replicas = {options.Replicas} needs a ResNetModel, which can be copied; this model is a {model.GetType().Name}.", nameof(options));
        _model = model;
        Options = options;
    }

    /// <summary>The options this trainer was created with.</summary>
    public TrainingOptions Options { get; }

    /// <summary>Raised after every optimizer step (and every skipped step). Throttle display in the handler.</summary>
    public event Action<StepProgress>? StepCompleted;

    /// <summary>Raised after every epoch, once validation (if any) has run.</summary>
    public event Action<EpochMetrics>? EpochCompleted;

    /// <summary>Trains the model in place.</summary>
    /// <param name="train">Training images and labels.</param>
    /// <param name="validation">Optional validation set, evaluated after every epoch; needed for early stopping.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>Per-epoch metrics, the best epoch and whether training stopped early.</returns>
    /// <exception cref="ArgumentException">The data sets do not fit the model or each other, or early stopping has no validation set.</exception>
    /// <exception cref="TrainingDivergedException">NaN/Inf under <see cref="NonFiniteLossPolicy.Throw"/>.</exception>
    /// <exception cref="OperationCanceledException">Cancellation was requested; the weights are those after the last completed step.</exception>
    public TrainingResult Fit(ImageDataset train, ImageDataset? validation = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        // Process-wide and idempotent: without it glibc returns each step's large freed tensors to the kernel, and
        // the next step faults them back in page by page (see the class remarks).
        NativeMemoryTuning.RetainFreedMemory();
        var options = Options;
        Exception? dataError = null;
        try
        {
            CheckData(train, validation);
        }
        catch (ArgumentException e) when (options.Distributed is not null)
        {
            dataError = e; // reported through the start-up agreement, so that the other ranks stop too
        }
        cancellationToken.ThrowIfCancellationRequested();

        var parameters = _model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        var distributed = options.Distributed is null ? null
            : DistributedTraining.Start(options, _model, _resNet, train, validation, parameters.Select(p => p.parameter).ToList(), dataError);
        // Distributed: every rank uses as many images of its shard as the smallest shard has, BatchSize / P at a time.
        var count = distributed?.ShardCount ?? train.Count;
        var batchSize = (int)Math.Min(options.BatchSize / (distributed?.Size ?? 1), count);
        // A trailing batch of one image is dropped: batch norm cannot normalise a single sample in train mode.
        var stepsPerEpoch = (int)(count / batchSize + (count % batchSize >= 2 ? 1 : 0));
        var scheduler = new LearningRateScheduler(options, stepsPerEpoch);

        torch.manual_seed(options.Seed);
        // Each rank shuffles and augments its shard with its own stream; rank 0's is that of a single process.
        using var generator = new Generator(unchecked((ulong)options.Seed + 1_000_003UL * (ulong)(distributed?.Rank ?? 0)));
        var augmentation = new BatchAugmentation(options.RandomCrop, options.CropPadding, options.HorizontalFlip, generator, options.CropPaddingValue);

        using var optimizer = optim.SGD(parameters.Select(p => p.parameter), options.LearningRate,
            momentum: options.Momentum, dampening: 0, weight_decay: options.WeightDecay, nesterov: options.Nesterov);

        using var bufferBackup = options.NonFinitePolicy == NonFiniteLossPolicy.SkipStep ? new WeightSnapshot(_model, buffersOnly: true) : null;
        var useEarlyStopping = options.EarlyStoppingPatience is not null;
        using var best = useEarlyStopping ? new WeightSnapshot(_model, buffersOnly: false) : null;

        var telemetry = _resNet?.Telemetry;
        var wasTraining = _model.training;
        using var replicas = options.Replicas > 1 ? new DataParallelReplicas((ResNetModel)_model, options.Replicas - 1) : null;
        var threads = torch.get_num_threads();
        var threadsPerReplica = Math.Max(1, threads / options.Replicas);
        var epochs = new List<EpochMetrics>();
        var total = Stopwatch.StartNew();
        var trainingClock = new Stopwatch();
        long globalStep = 0, stepsRun = 0;
        var bestEpoch = 0;
        double? bestMetric = null;
        var epochsWithoutImprovement = 0;
        var stoppedEarly = false;

        try
        {
            for (var epoch = 1; epoch <= options.Epochs; epoch++)
            {
                _model.train();
                replicas?.Train(true);
                if (replicas is not null)
                    torch.set_num_threads(threadsPerReplica);
                using var epochScope = NewDisposeScope();
                var order = randperm(count, generator: generator);
                double lossSum = 0;
                long correct = 0, seen = 0, processed = 0;
                var skipped = 0;
                var learningRate = 0.0;
                var epochClock = Stopwatch.StartNew();
                var epochTrainTime = TimeSpan.Zero;

                for (var step = 0; step < stepsPerEpoch; step++, globalStep++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var stepStart = trainingClock.Elapsed;
                    trainingClock.Start();
                    var start = (long)step * batchSize;
                    var length = Math.Min(batchSize, count - start);
                    learningRate = scheduler.At(globalStep);
                    foreach (var group in optimizer.ParamGroups)
                        group.LearningRate = learningRate;
                    if (telemetry is not null)
                        telemetry.Step = globalStep;

                    var outcome = RunStep(train, order, start, length, augmentation, optimizer, parameters, bufferBackup, replicas, distributed);
                    QuantizedBackward.EndStep();
                    trainingClock.Stop();
                    stepsRun++;
                    processed += length;
                    epochTrainTime += trainingClock.Elapsed - stepStart;

                    if (outcome.Failure is { } failure)
                    {
                        if (options.NonFinitePolicy == NonFiniteLossPolicy.Throw)
                            throw new TrainingDivergedException(epoch, step + 1, failure.Source, failure.Layer, failure.Role, failure.Inner);
                        skipped++;
                    }
                    else
                    {
                        lossSum += outcome.Loss * length;
                        correct += outcome.Correct;
                        seen += length;
                    }

                    var imagesPerSecond = processed / Math.Max(epochTrainTime.TotalSeconds, 1e-9);
                    var remainingSteps = scheduler.TotalSteps - (globalStep + 1);
                    var eta = TimeSpan.FromSeconds(trainingClock.Elapsed.TotalSeconds / stepsRun * remainingSteps);
                    StepCompleted?.Invoke(new StepProgress(epoch, step + 1, stepsPerEpoch, outcome.Failure is null ? outcome.Loss : double.NaN, imagesPerSecond, eta)
                    {
                        GlobalStep = globalStep,
                        LearningRate = learningRate,
                        Skipped = outcome.Failure is not null,
                    });
                }

                if (skipped == stepsPerEpoch)
                    throw new TrainingDivergedException(epoch, stepsPerEpoch, "loss or gradient in every step of the epoch (all steps skipped)");

                if (replicas is not null)
                    torch.set_num_threads(threads);
                if (distributed is not null)
                {
                    distributed.AverageBuffers(_model);
                    (lossSum, correct, seen) = distributed.SumEpoch(lossSum, correct, seen);
                }
                var trainImagesPerSecond = seen / Math.Max(epochTrainTime.TotalSeconds, 1e-9);
                double? validationLoss = null, validationAccuracy = null;
                if (validation is not null && (distributed?.Rank ?? 0) == 0)
                {
                    var (vLoss, vAccuracy) = EvaluateCore(_model, validation, options.EvaluationBatchSize, cancellationToken);
                    validationLoss = vLoss;
                    validationAccuracy = vAccuracy;
                }
                if (distributed is not null)
                    (validationLoss, validationAccuracy) = distributed.ShareValidation(validationLoss, validationAccuracy);

                var metrics = new EpochMetrics(epoch, seen > 0 ? lossSum / seen : double.NaN, seen > 0 ? (double)correct / seen : double.NaN,
                    validationLoss, validationAccuracy, learningRate, trainImagesPerSecond, total.Elapsed,
                    telemetry?.Latest() ?? Array.Empty<TensorStatistics>())
                {
                    SkippedSteps = skipped,
                    TrainingTime = epochTrainTime,
                    ResidentBytes = ProcessMemory.ResidentBytes(),
                    WorstSaturationByRole = telemetry?.WorstSaturationByRole() ?? new Dictionary<TensorRole, double>(),
                };
                epochs.Add(metrics);

                // Best epoch: by the chosen validation metric when there is a validation set, else the last one.
                var metric = options.EarlyStoppingMetric == EarlyStoppingMetric.ValidationAccuracy ? validationAccuracy : validationLoss;
                if (metric is null)
                {
                    bestEpoch = epoch;
                }
                else if (bestMetric is null || Improves(metric.Value, bestMetric.Value, options))
                {
                    bestMetric = metric;
                    bestEpoch = epoch;
                    epochsWithoutImprovement = 0;
                    best?.Capture();
                }
                else
                {
                    epochsWithoutImprovement++;
                }

                EpochCompleted?.Invoke(metrics);

                if (useEarlyStopping && epochsWithoutImprovement >= options.EarlyStoppingPatience!.Value && epoch < options.Epochs)
                {
                    stoppedEarly = true;
                    break;
                }
            }

            var restored = false;
            if (best is not null && best.Captured && bestEpoch != epochs.Count)
            {
                best.Restore();
                restored = true;
            }
            distributed?.CheckSameModel(_model);
            return new TrainingResult(epochs, bestEpoch, stoppedEarly)
            {
                RestoredBestWeights = restored,
                Distributed = distributed is null ? null
                    : new DistributedTrainingResult(distributed.Rank, distributed.Size, distributed.BytesPerStep.Bytes, distributed.BytesPerStep.Fp32Bytes),
            };
        }
        catch (Exception e) when (distributed is { Size: > 1 } && e is not (DistributedTrainingException or TrainingDivergedException))
        {
            // Only this rank failed; the others are inside a collective call waiting for it.
            distributed.Abort(e);
            throw;
        }
        finally
        {
            _model.train(wasTraining);
            if (replicas is not null)
                torch.set_num_threads(threads);
        }
    }

    /// <summary>Mean cross-entropy and accuracy of <paramref name="model"/> on <paramref name="data"/>.</summary>
    /// <remarks>Runs in eval mode (batch-norm running statistics) without gradients; the model's mode is restored after.</remarks>
    /// <exception cref="ArgumentException">The data set is empty or has more classes than the model.</exception>
    public static (double Loss, double Accuracy) Evaluate(ResNetModel model, ImageDataset data, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        if (data.ClassCount > model.Options.NumClasses)
            throw new ArgumentException($"The data set has {data.ClassCount} classes but the model predicts {model.Options.NumClasses}.", nameof(data));
        return EvaluateCore(model, data, batchSize, CancellationToken.None);
    }

    /// <summary>Class probabilities (softmax of the logits) for every image, computed in batches.</summary>
    /// <param name="model">The classifier.</param>
    /// <param name="images">Images [N, C, H, W], normalised like the training data.</param>
    /// <param name="batchSize">Images per forward pass.</param>
    /// <returns>A new float32 tensor [N, classes] owned by the caller (in the caller's dispose scope, if any).</returns>
    /// <remarks>
    /// Runs in eval mode without gradients; the model's mode is restored after. For a quantised model the answer
    /// depends slightly on <paramref name="batchSize"/> and on which images share a batch: a DFP activation tensor
    /// has one exponent for the whole batch, so the other images set the grid each image is rounded to.
    /// </remarks>
    public static Tensor PredictProbabilities(ResNetModel model, Tensor images, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(model);
        return PredictProbabilitiesCore(model, images, batchSize);
    }

    internal static Tensor PredictProbabilitiesCore(nn.Module<Tensor, Tensor> model, Tensor images, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (images.dim() != 4)
            throw new ArgumentException($"Expected images of shape [N, C, H, W]; got [{string.Join(", ", images.shape)}].", nameof(images));
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var n = images.shape[0];
            var parts = new List<Tensor>();
            for (long start = 0; start < n; start += batchSize)
            {
                var length = Math.Min(batchSize, n - start);
                parts.Add(nn.functional.softmax(model.call(images.narrow(0, start, length)), 1));
            }
            var result = parts.Count == 1 ? parts[0] : cat(parts, 0);
            return result.MoveToOuterDisposeScope();
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    internal static (double Loss, double Accuracy) EvaluateCore(nn.Module<Tensor, Tensor> model, ImageDataset data, int batchSize, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var n = data.Count;
        if (n == 0)
            throw new ArgumentException("Cannot evaluate on an empty data set.", nameof(data));
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            double lossSum = 0;
            long correct = 0;
            for (long start = 0; start < n; start += batchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var length = Math.Min(batchSize, n - start);
                var labels = data.Labels.narrow(0, start, length);
                var logits = model.call(data.Images.narrow(0, start, length));
                lossSum += nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum).item<float>();
                correct += logits.argmax(1).eq(labels).sum().item<long>();
            }
            return (lossSum / n, (double)correct / n);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    private StepOutcome RunStep(ImageDataset train, Tensor order, long start, long length, BatchAugmentation augmentation,
        optim.Optimizer optimizer, IReadOnlyList<(string name, Parameter parameter)> parameters, WeightSnapshot? bufferBackup, DataParallelReplicas? replicas,
        DistributedTraining? distributed)
    {
        using var scope = NewDisposeScope();
        var indices = order.narrow(0, start, length);
        var images = augmentation.Apply(train.Images.index_select(0, indices));
        var labels = train.Labels.index_select(0, indices);
        optimizer.zero_grad();
        bufferBackup?.Capture();

        // Every slice keeps at least two images, so that batch norm has statistics to normalise with.
        var slices = replicas is null ? 1 : (int)Math.Max(1, Math.Min(replicas.Replicas.Count + 1, length / 2));
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
                var model = slice == 0 ? _model : replicas!.Replicas[slice - 1];
                results[slice] = RunSlice(model, images.narrow(0, sliceStart, sliceLength), labels.narrow(0, sliceStart, sliceLength), sliceLength / (double)length);
            });
        }

        var failure = results.Select(r => r.Failure).FirstOrDefault(f => f is not null);
        if (failure is null)
            replicas?.ReduceGradients();
        // Every rank takes part in the exchange even after a local failure, which it sends as NaN: all ranks then see
        // a non-finite gradient and skip (or stop) together.
        distributed?.ExchangeGradients(localFailure: failure is not null);
        failure ??= CheckGradients(parameters);
        if (failure is not null)
        {
            // Leave no trace of the bad batch: no update, and batch-norm statistics as they were.
            optimizer.zero_grad();
            replicas?.ZeroGradients();
            bufferBackup?.Restore();
            replicas?.Synchronize();
            return new StepOutcome(double.NaN, 0, failure);
        }

        replicas?.AverageBuffers(slices - 1);
        optimizer.step();
        replicas?.Synchronize();
        return new StepOutcome(results.Sum(r => r.Loss), results.Sum(r => r.Correct), null);
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
                return new StepOutcome(double.NaN, 0, new Failure("loss", null, null, null));
            var correct = logits.argmax(1).eq(labels).sum().item<long>();
            (weight == 1.0 ? lossTensor : lossTensor * weight).backward();
            return new StepOutcome(loss * weight, correct, null);
        }
        catch (Exception e) when (FindNonFinite(e) is { } found)
        {
            return new StepOutcome(double.NaN, 0, found);
        }
    }

    /// <summary>
    /// One reduction per gradient, stacked, and a single finiteness test: cheap next to the convolutions,
    /// and exact about which parameter went bad. (A sum of finite gradients overflowing to infinity needs
    /// gradients near 1e38, which is divergence too.)
    /// </summary>
    private static Failure? CheckGradients(IReadOnlyList<(string name, Parameter parameter)> parameters)
    {
        var names = new List<string>(parameters.Count);
        var sums = new List<Tensor>(parameters.Count);
        foreach (var (name, parameter) in parameters)
        {
            var grad = parameter.grad;
            if (grad is null)
                continue;
            names.Add(name);
            sums.Add(grad.sum());
        }
        if (sums.Count == 0)
            return null;
        var finite = stack(sums).isfinite();
        if (finite.all().item<bool>())
            return null;
        var firstBad = (int)finite.logical_not().nonzero()[0, 0].item<long>();
        var parameterName = names[firstBad];
        var dot = parameterName.LastIndexOf('.');
        var layer = dot > 0 ? parameterName[..dot] : parameterName;
        return new Failure($"gradient of '{parameterName}'", layer, null, null);
    }

    private static Failure? FindNonFinite(Exception e)
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            if (current is NonFiniteTensorException nonFinite)
                return new Failure("quantised tensor", nonFinite.Layer, nonFinite.Role, nonFinite);
        }
        // An exception thrown inside a custom autograd backward may cross libtorch and come back as a plain
        // exception carrying only the message; the numerics message names the layer and role.
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            var match = NumericsMessage.Match(current.Message);
            if (match.Success && current.Message.Contains("NaN", StringComparison.Ordinal))
            {
                TensorRole? role = Enum.TryParse<TensorRole>(match.Groups["role"].Value, out var parsed) ? parsed : null;
                return new Failure("quantised tensor", match.Groups["layer"].Value, role, e);
            }
        }
        return null;
    }

    private static bool Improves(double candidate, double best, TrainingOptions options) =>
        options.EarlyStoppingMetric == EarlyStoppingMetric.ValidationAccuracy
            ? candidate > best + options.EarlyStoppingMinDelta
            : candidate < best - options.EarlyStoppingMinDelta;

    private void CheckData(ImageDataset train, ImageDataset? validation)
    {
        if (train.Count < 2)
            throw new ArgumentException($"The training set needs at least 2 images; it has {train.Count}.", nameof(train));
        if (_resNet is not null)
        {
            var classes = _resNet.Options.NumClasses;
            if (train.ClassCount > classes)
                throw new ArgumentException($"The training set has {train.ClassCount} classes but the model predicts {classes} (ResNetOptions.NumClasses).", nameof(train));
            var channels = _resNet.Options.InputChannels;
            if (train.Images.shape[1] != channels)
                throw new ArgumentException($"The training images have {train.Images.shape[1]} channels but the model expects {channels} (ResNetOptions.InputChannels).", nameof(train));
        }
        if (validation is null)
        {
            if (Options.EarlyStoppingPatience is not null)
                throw new ArgumentException("TrainingOptions.EarlyStoppingPatience needs a validation set; pass one to Fit.", nameof(validation));
            return;
        }
        if (validation.Count == 0)
            throw new ArgumentException("The validation set is empty.", nameof(validation));
        if (validation.ClassCount != train.ClassCount)
            throw new ArgumentException($"The validation set has {validation.ClassCount} classes, the training set {train.ClassCount}.", nameof(validation));
        var trainShape = train.Images.shape[1..];
        var validationShape = validation.Images.shape[1..];
        if (!trainShape.SequenceEqual(validationShape))
            throw new ArgumentException($"Validation images are [{string.Join(", ", validationShape)}] but training images are [{string.Join(", ", trainShape)}].", nameof(validation));
    }

    private sealed record Failure(string Source, string? Layer, TensorRole? Role, Exception? Inner);

    private readonly record struct StepOutcome(double Loss, long Correct, Failure? Failure);
}
