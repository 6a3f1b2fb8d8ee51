using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Onnx;
using Microsoft.ML.SDfp.Persistence;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// A trained ResNet prepared for scoring, with its input normalisation. Shared by a transformer and the views and
/// mappers it creates.
/// </summary>
/// <remarks>
/// <para>Scoring uses the trained number format with two deliberate differences from the training-time forward:</para>
/// <para>1. Weights are quantised once (<see cref="Freeze"/>): each quantised layer's weight is replaced by its grid
/// values q·2^e and the layer no longer re-quantises it. Re-quantising grid values is not idempotent for S-DFP with a
/// positive shift (the largest values saturate again at a lower exponent), so freezing is what makes a saved and
/// reloaded model score bit-identically.</para>
/// <para>2. Activations use one static exponent per layer, calibrated after training: the training images are run
/// through the network in batches of the training batch size with the trained activation format (nearest-even,
/// current amax), and each layer keeps the exponent its batches chose most often. A per-batch exponent would make a
/// row's score depend on its batch neighbours; a per-image exponent would clip every image's own largest activations
/// under a positive shift, which the network never saw in training. The static exponent is what the training-time
/// evaluation used for a typical batch, and it makes scoring deterministic and independent of batching.</para>
/// </remarks>
internal sealed class SDfpNetwork : IImageScoringEngine
{
    [ThreadStatic]
    private static float[]? t_images;

    private readonly object _lock = new();
    private readonly List<Action> _hookRemovers = new();
    private readonly Dictionary<string, DfpTensor> _frozen = new(StringComparer.Ordinal);
    private readonly Dictionary<string, float[]> _masterWeights = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _activationExponents = new(StringComparer.Ordinal);

    public SDfpNetwork(ResNetModel model, ImageInputShape inputShape, float[] mean, float[] std)
    {
        Model = model;
        InputShape = inputShape;
        Mean = mean;
        Std = std;
    }

    public ResNetModel Model { get; }

    public ImageInputShape InputShape { get; }

    public float[] Mean { get; }

    public float[] Std { get; }

    public int ClassCount => Model.Options.NumClasses;

    public int EmbeddingSize => (int)Model.EmbeddingSize;

    int IImageScoringEngine.Channels => InputShape.Channels;

    int IImageScoringEngine.Height => InputShape.Height;

    int IImageScoringEngine.Width => InputShape.Width;

    /// <summary>Quantised weights kept as integers for persistence, by parameter name ("layer1.0.conv1.weight").</summary>
    public IReadOnlyDictionary<string, DfpTensor> FrozenWeights => _frozen;

    /// <summary>
    /// FP32 master weights of the quantised layers as they were before <see cref="Freeze"/>, when it was asked to keep
    /// them (only to measure what integer storage saves against storing the trained model in FP32).
    /// </summary>
    public IReadOnlyDictionary<string, float[]> MasterWeights => _masterWeights;

    /// <summary>Calibrated static activation exponent of each quantised layer, by module path ("layer1.0.conv1").</summary>
    public IReadOnlyDictionary<string, int> ActivationExponents => _activationExponents;

    /// <summary>The format each layer's weights were trained in, before <see cref="Freeze"/> (policy of the model).</summary>
    public QuantizationPolicy TrainedPolicy => Model.Options.Quantization;

    /// <summary>
    /// Prepares a model for scoring: quantise its weights once, fix one activation exponent per layer, and switch the
    /// layers to those. A freshly trained model passes <paramref name="calibrationImages"/> (normalised training images)
    /// to calibrate the exponents; a loaded model passes the stored integers and exponents instead.
    /// </summary>
    public void Freeze(IReadOnlyDictionary<string, DfpTensor>? loadedWeights = null, IReadOnlyDictionary<string, int>? loadedExponents = null,
        Tensor? calibrationImages = null, int calibrationBatchSize = 128, bool keepMasterWeights = false)
    {
        Model.eval();
        Model.Telemetry = null;
        var layers = new List<(string Path, nn.Module<Tensor, Tensor> Module, IQuantizedLayer Layer, DfpFormat Activation)>();
        using (torch.no_grad())
        {
            foreach (var (path, module) in Model.named_modules())
            {
                if (module is not IQuantizedLayer layer)
                {
                    continue;
                }

                QuantizationConfig trained = layer.Config;
                string parameterName = path + ".weight";
                if (trained.Weight is { } weightFormat)
                {
                    if (keepMasterWeights)
                    {
                        _masterWeights[parameterName] = layer.weight.detach().contiguous().data<float>().ToArray();
                    }

                    DfpTensor quantized = loadedWeights is not null && loadedWeights.TryGetValue(parameterName, out var stored)
                        ? stored
                        : QuantizeWeight(layer.weight, InferenceFormat(weightFormat), path);
                    using Tensor gridValues = quantized.ToFloat();
                    layer.weight.copy_(gridValues);
                    // The network owns the integers (they are saved with it), whatever dispose scope loaded them.
                    quantized.Integers.DetachFromDisposeScope();
                    _frozen[parameterName] = quantized;
                }

                // Weights are on the grid now; activations keep the trained format (deterministic variant) for calibration.
                QuantizationConfig scoring = QuantizationConfig.Fp32 with
                {
                    Activation = trained.Activation is { } a ? InferenceFormat(a) : null,
                };
                layer.Config = scoring;
                if (scoring.Activation is { } activation)
                {
                    layers.Add((path, (nn.Module<Tensor, Tensor>)module, layer, activation));
                }
            }
        }

        if (layers.Count > 0)
        {
            if (loadedExponents is not null)
            {
                foreach (var layer in layers)
                {
                    _activationExponents[layer.Path] = loadedExponents.TryGetValue(layer.Path, out int e)
                        ? e
                        : throw new InvalidDataException($"The model file has no activation exponent for layer '{layer.Path}'; it is corrupt.");
                }
            }
            else
            {
                Calibrate(layers.Select(l => (l.Path, l.Layer)).ToList(), calibrationImages
                    ?? throw new InvalidOperationException("A quantised model needs calibration images to fix its activation exponents."), calibrationBatchSize);
            }

            foreach (var layer in layers)
            {
                DfpFormat format = layer.Activation;
                int exponent = _activationExponents[layer.Path];
                layer.Layer.Config = QuantizationConfig.Fp32;
                // Same grid as Dfp.FakeQuantize(input, format, exponent) (tested bit for bit), without per-call scalars.
                var quantizer = new StaticActivationQuantizer(format, exponent);
                var hook = layer.Module.register_forward_pre_hook((_, input) => quantizer.Quantize(input));
                _hookRemovers.Add(hook.remove);
                _hookRemovers.Add(quantizer.Dispose);
            }
        }
    }

    /// <summary>Quantises a weight once in <paramref name="format"/> (nearest-even, current amax).</summary>
    private static DfpTensor QuantizeWeight(Tensor weight, DfpFormat format, string layer)
    {
        using var scope = torch.NewDisposeScope();
        DfpTensor q;
        if (format.AutoShift)
        {
            // Auto shift is chosen per tensor by a quantiser; one fresh quantiser sees only this tensor.
            using var quantizer = new TensorQuantizer(layer, TensorRole.Weight, format);
            q = quantizer.Quantize(weight.detach());
        }
        else
        {
            q = Dfp.Quantize(weight.detach(), format);
        }

        Tensor integers = q.Integers.to_type(Dfp.IntegerType(format)).DetachFromDisposeScope();
        return new DfpTensor(integers, q.Exponent, format);
    }

    private void Calibrate(IReadOnlyList<(string Path, IQuantizedLayer Layer)> layers, Tensor images, int batchSize)
    {
        var votes = layers.ToDictionary(l => l.Path, _ => new Dictionary<int, int>());
        long count = images.shape[0];
        for (long start = 0; start < count; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            Model.call(images.slice(0, start, Math.Min(count, start + batchSize), 1));
            foreach (var (path, layer) in layers)
            {
                int exponent = layer.Quantizer(TensorRole.Activation)!.LastExponent;
                votes[path][exponent] = votes[path].GetValueOrDefault(exponent) + 1;
            }
        }

        foreach (var (path, tally) in votes)
        {
            // The exponent most batches chose; on a tie the larger one (more headroom, less clipping).
            _activationExponents[path] = tally.OrderByDescending(kv => kv.Value).ThenByDescending(kv => kv.Key).First().Key;
        }
    }

    /// <summary>
    /// Scores <paramref name="count"/> normalised images (CHW each, contiguous) in one forward pass. Returns softmax
    /// probabilities [count × classes] and/or embeddings [count × EmbeddingSize].
    /// </summary>
    public (float[]? Probabilities, float[]? Embeddings) Forward(float[] images, int count, bool wantProbabilities, bool wantEmbeddings)
    {
        // TorchSharp modules are not safe to call from several threads at once (hooks, dispose scopes); scoring
        // from many cursors or prediction engines serialises here, each call still scores a whole batch.
        lock (_lock)
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            long[] shape = [count, InputShape.Channels, InputShape.Height, InputShape.Width];
            // A full buffer is used as it is (a PredictionEngine's one image every call); a partial batch is copied.
            Tensor x = torch.tensor(images.Length == count * InputShape.Size ? images : images.AsSpan(0, count * InputShape.Size).ToArray(), shape);
            Tensor features = Model.Features(x);
            float[]? embeddings = wantEmbeddings ? features.contiguous().data<float>().ToArray() : null;
            float[]? probabilities = null;
            if (wantProbabilities)
            {
                Tensor logits = Model.Classifier.call(features);
                probabilities = torch.nn.functional.softmax(logits, 1).contiguous().data<float>().ToArray();
            }

            return (probabilities, embeddings);
        }
    }

    /// <inheritdoc/>
    public (float[]? Probabilities, float[]? Embeddings) Score(float[] rgb, int count, bool wantProbabilities, bool wantEmbeddings)
    {
        int size = InputShape.Size;
        int rgbSize = 3 * InputShape.Height * InputShape.Width;
        // One buffer per thread, reused while the batch size stays (a PredictionEngine's every call): a new one per
        // call was 3 KB of the managed allocations per 28×28 prediction. Forward copies it into a tensor it disposes.
        float[] images = t_images is { } buffer && buffer.Length == count * size ? buffer : t_images = new float[count * size];
        for (int i = 0; i < count; i++)
        {
            Span<float> image = images.AsSpan(i * size, size);
            ImageFeatureReader.ToModelChannels(rgb.AsSpan(i * rgbSize, rgbSize), image, InputShape.Channels);
            Normalize(image);
        }

        return Forward(images, count, wantProbabilities, wantEmbeddings);
    }

    /// <summary>
    /// The network as the TorchSharp-free scoring package sees it: the stored tensors (quantised weights as their
    /// integers), the static activation exponents and the normalisation; what the model file and the ONNX graph are
    /// made from.
    /// </summary>
    public ScoringNetwork ToScoringNetwork()
    {
        var tensors = new List<StoredTensor>();
        foreach (var (name, tensor) in Model.state_dict())
        {
            if (_frozen.TryGetValue(name, out DfpTensor? q))
            {
                tensors.Add(q.Format.Bits <= 8
                    ? new StoredTensor(name, StoredTensorKind.Int8, q.Shape, q.Format.Bits, q.Exponent, int8: q.ToArray<sbyte>())
                    : new StoredTensor(name, StoredTensorKind.Int16, q.Shape, q.Format.Bits, q.Exponent, int16: q.ToArray<short>()));
                continue;
            }

            using var scope = torch.NewDisposeScope();
            Tensor cpu = tensor.detach().cpu().contiguous();
            tensors.Add(cpu.dtype == ScalarType.Int64
                ? new StoredTensor(name, StoredTensorKind.Int64, cpu.shape, int64: cpu.data<long>().ToArray())
                : new StoredTensor(name, StoredTensorKind.Float32, cpu.shape, float32: cpu.to_type(ScalarType.Float32).data<float>().ToArray()));
        }

        return new ScoringNetwork(Model.Options.Architecture.ToString(), InputShape.Channels, InputShape.Height, InputShape.Width, ClassCount,
            Mean, Std, tensors, new Dictionary<string, int>(_activationExponents, StringComparer.Ordinal), TrainedPolicy.Layers.Activation?.Bits ?? 0);
    }

    /// <summary>Applies the stored per-channel normalisation in place to one image (CHW).</summary>
    public void Normalize(Span<float> image)
    {
        int plane = InputShape.Height * InputShape.Width;
        for (int c = 0; c < InputShape.Channels; c++)
        {
            float mean = Mean[c], std = Std[c];
            Span<float> channel = image.Slice(c * plane, plane);
            for (int i = 0; i < channel.Length; i++)
            {
                channel[i] = (channel[i] - mean) / std;
            }
        }
    }

    /// <summary>The deterministic inference variant of a trained format: nearest-even rounding, current exponent.</summary>
    internal static DfpFormat InferenceFormat(DfpFormat trained) =>
        trained with { Rounding = RoundingMode.NearestEven, ExponentSource = ExponentSource.Current };

    public void Dispose()
    {
        foreach (Action remove in _hookRemovers)
        {
            remove();
        }

        _hookRemovers.Clear();
        foreach (DfpTensor weight in _frozen.Values)
        {
            weight.Dispose();
        }

        _frozen.Clear();
        Model.Dispose();
    }
}
