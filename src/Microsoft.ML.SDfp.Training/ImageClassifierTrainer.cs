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
        Exception? dataError = null;
        try
        {
            CheckData(train, validation);
        }
        catch (ArgumentException e) when (Options.Distributed is not null)
        {
            dataError = e; // reported through the start-up agreement, so that the other ranks stop too
        }
        cancellationToken.ThrowIfCancellationRequested();

        var parameters = _model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        var distributed = Options.Distributed is null ? null
            : DistributedTraining.Start(Options, _model, _resNet, train, validation, parameters.Select(p => p.parameter).ToList(), dataError);
        var wasTraining = _model.training;
        try
        {
            using var run = new TrainingRun(_model, _resNet, Options, train, validation, parameters, distributed, p => StepCompleted?.Invoke(p));
            using var earlyStopping = new EarlyStopping(Options, _model);
            var epochs = new List<EpochMetrics>();
            var stoppedEarly = false;
            var checkpoint = Options.CheckpointDirectory;
            var description = checkpoint is null ? "" : TrainingCheckpoint.Describe(Options, _model, train, validation);
            if (checkpoint is not null)
            {
                TrainingCheckpoint.TryRestore(checkpoint, description, reader =>
                {
                    epochs = TrainingCheckpoint.ReadMetrics(reader, Options.Epochs);
                    stoppedEarly = reader.ReadBoolean();
                    earlyStopping.ReadState(reader);
                    run.ReadState(reader);
                });
            }

            for (var epoch = epochs.Count + 1; epoch <= Options.Epochs && !stoppedEarly; epoch++)
            {
                var metrics = run.RunEpoch(epoch, cancellationToken);
                epochs.Add(metrics);
                stoppedEarly = earlyStopping.Observe(metrics);
                if (checkpoint is not null)
                {
                    // Before the callback, so that a handler that cancels or a kill that follows finds this epoch saved.
                    TrainingCheckpoint.Save(checkpoint, description, writer =>
                    {
                        TrainingCheckpoint.WriteMetrics(writer, epochs);
                        writer.Write(stoppedEarly);
                        earlyStopping.WriteState(writer);
                        run.WriteState(writer);
                    });
                }
                EpochCompleted?.Invoke(metrics);
            }

            var restored = earlyStopping.RestoreBest(epochs.Count);
            distributed?.CheckSameModel(_model);
            return new TrainingResult(epochs, earlyStopping.BestEpoch, stoppedEarly)
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
        return ClassifierEvaluation.Evaluate(model, data, batchSize, CancellationToken.None);
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
        return ClassifierEvaluation.PredictProbabilities(model, images, batchSize);
    }

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
}
