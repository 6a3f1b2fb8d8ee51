using Microsoft.ML;
using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Onnx;
using Microsoft.ML.SDfp.Persistence;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Scoring;
using Microsoft.ML.SDfp.Trainers;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;

// Format 0x00010001 files name this assembly's loader; later formats name the scoring package's, which comes back
// here (TorchSharpScoring) when this package is deployed.
[assembly: LoadableClass(typeof(SDfpImageClassificationTransformer), null, typeof(SignatureLoadModel),
    "S-DFP Image Classification Transformer", SDfpImageClassificationTransformer.LegacyLoaderSignature)]
[assembly: TorchSharpScoring(typeof(SDfpImageClassificationTransformer))]

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// A ResNet image classifier trained by <see cref="SDfpImageClassificationTrainer"/>, scored with TorchSharp in the
/// trained number format (S-DFP weights and activations), a batch of rows per forward pass. Adds the columns of
/// <see cref="SDfpImageClassifier"/>. Saved with <c>mlContext.Model.Save</c>; loaded by <c>mlContext.Model.Load</c> in
/// any process, with no registration call: with this package deployed as a TorchSharp transformer, with only the
/// scoring package as an ONNX Runtime one (<see cref="SDfpOnnxImageClassifier"/>).
/// </summary>
public sealed class SDfpImageClassificationTransformer : SDfpImageClassifier
{
    internal const string LegacyLoaderSignature = "SDfpImageClassifierXf";

    // The first format, 0x00010001, is read here; it has the same layout as the scoring package's formats.
    private const uint LegacyVersion = 0x00010001;

    private readonly SDfpNetwork _network;
    private readonly bool _ownsNetwork;

    internal SDfpImageClassificationTransformer(IHostEnvironment env, SDfpNetwork network, LabelNames labelNames, ImageColumnKind kind,
        ImageInputShape vectorShape, string featureColumnName, string? imagePathColumnName, string? scoreColumnName,
        string? predictedLabelColumnName, string? embeddingColumnName, int scoringBatchSize, bool ownsNetwork = true)
        : base(env, nameof(SDfpImageClassificationTransformer), labelNames, kind, vectorShape, featureColumnName, imagePathColumnName,
            scoreColumnName, predictedLabelColumnName, embeddingColumnName, scoringBatchSize)
    {
        _network = network;
        _ownsNetwork = ownsNetwork;
    }

    /// <summary>Network architecture.</summary>
    public ResNetArchitecture Architecture => _network.Model.Options.Architecture;

    /// <summary>The number format the body was trained in and scores in, e.g. "W S-DFP8(s=0), A S-DFP8(s=1), G S-DFP8(s=2)" or "FP32".</summary>
    public string NumberFormat
    {
        get
        {
            var layers = _network.TrainedPolicy.Layers;
            return layers.IsFp32 ? "FP32" : $"W {DfpFormat.NameOf(layers.Weight)}, A {DfpFormat.NameOf(layers.Activation)}, G {DfpFormat.NameOf(layers.Error)}";
        }
    }

    internal SDfpNetwork Network => _network;

    internal override IImageScoringEngine Engine => _network;

    internal override ScoringNetwork ScoringNetwork => _network.ToScoringNetwork();

    /// <summary>Test hook: store quantised weights as FP32 to measure what integer storage saves.</summary>
    internal bool StoreWeightsAsFp32 { get; set; }

    /// <summary>
    /// A transformer that shares this model and emits only its penultimate-layer embedding (a float vector of
    /// <see cref="SDfpImageClassifier.EmbeddingSize"/>) in <paramref name="outputColumnName"/>, as features for another trainer.
    /// </summary>
    public SDfpImageClassificationTransformer AsFeaturizer(string outputColumnName = "Embedding")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(outputColumnName);
        return new SDfpImageClassificationTransformer(Host, _network, LabelNames, Kind, VectorShape, FeatureColumnName, ImagePathColumnName,
            scoreColumnName: null, predictedLabelColumnName: null, embeddingColumnName: outputColumnName, ScoringBatchSize, ownsNetwork: false);
    }

    /// <summary>
    /// The same model scored by ONNX Runtime (<see cref="OnnxGraphKind.Exact"/>: the same labels and, within float
    /// summation order, the same scores), as a scoring-only app loads it.
    /// </summary>
    internal SDfpOnnxImageClassifier WithOnnxRuntime(OnnxGraphKind kind = OnnxGraphKind.Exact) => new(Host, ToModelFile(), kind);

    /// <summary>Releases the native memory of the network (when this transformer owns it).</summary>
    public override void Dispose()
    {
        if (_ownsNetwork)
        {
            _network.Dispose();
        }
    }

    internal override ClassifierModelFile ToModelFile()
    {
        ScoringNetwork network = _network.ToScoringNetwork();
        IEnumerable<StoredTensor> tensors = network.Tensors.Values;
        if (StoreWeightsAsFp32)
        {
            // Master weights where the network kept them, else the grid values: only to measure what integers save.
            tensors = tensors.Select(t => !t.IsQuantized ? t
                : new StoredTensor(t.Name, StoredTensorKind.Float32, t.Shape, float32: _network.MasterWeights.GetValueOrDefault(t.Name) ?? t.ToFloats()));
        }

        ResNetOptions options = _network.Model.Options;
        return new ClassifierModelFile
        {
            Kind = Kind,
            VectorShape = VectorShape,
            FeatureColumn = FeatureColumnName,
            ImagePathColumn = ImagePathColumnName,
            ScoreColumn = ScoreColumnName,
            PredictedLabelColumn = PredictedLabelColumnName,
            EmbeddingColumn = EmbeddingColumnName,
            ScoringBatchSize = ScoringBatchSize,
            Architecture = (int)options.Architecture,
            InputShape = _network.InputShape,
            SmallImageStem = options.SmallImageStem,
            ClassCount = options.NumClasses,
            Policy = SDfpModelFormat.ToStored(_network.TrainedPolicy),
            ActivationExponents = _network.ActivationExponents,
            Mean = _network.Mean,
            Std = _network.Std,
            Labels = LabelNames,
            Tensors = tensors.ToList(),
        };
    }

    // Called by ML.NET's model loader for format 0x00010001 files (LoadableClass above).
    private static SDfpImageClassificationTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ClassifierModelFile.CheckVersion(ctx, new VersionInfo(ModelSignature, LegacyVersion, LegacyVersion, LegacyVersion, LegacyLoaderSignature,
            typeof(SDfpImageClassificationTransformer).Assembly.FullName));
        return FromModelFile(env, ClassifierModelFile.Read(env, ctx));
    }

    /// <summary>Builds the TorchSharp network back from a model file (the scoring package's loader calls this through <see cref="TorchSharpScoringAttribute"/>).</summary>
    internal static SDfpImageClassificationTransformer FromModelFile(IHostEnvironment env, ClassifierModelFile file)
    {
        TorchSharpRuntime.EnsureLoaded();
        var architecture = (ResNetArchitecture)file.Architecture;
        QuantizationPolicy policy;
        try
        {
            policy = SDfpModelFormat.FromStored(file.Policy);
        }
        catch (InvalidDataException ex)
        {
            throw new ModelFileCorruptException(file.HeaderEntry, $"has an invalid quantisation policy: {ex.Message}", ex);
        }

        ResNetModel model = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = architecture,
            NumClasses = file.ClassCount,
            InputChannels = file.InputShape.Channels,
            SmallImageStem = file.SmallImageStem,
            Quantization = policy,
        });
        var stateDict = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        var quantized = new Dictionary<string, DfpTensor>(StringComparer.Ordinal);
        try
        {
            CheckWeightsFit(model, file);
            foreach (StoredTensor stored in file.Tensors)
            {
                if (stored.IsQuantized)
                {
                    // The shift is already folded into the stored exponent, so plain DFP describes the integers.
                    DfpFormat format = DfpFormat.Dfp(stored.Bits);
                    quantized[stored.Name] = stored.Int8 is not null
                        ? DfpTensor.FromArray(stored.Int8, stored.Shape, stored.Exponent, format)
                        : DfpTensor.FromArray(stored.Int16!, stored.Shape, stored.Exponent, format);
                }

                stateDict[stored.Name] = stored.Kind == StoredTensorKind.Int64 ? torch.tensor(stored.Int64!, stored.Shape) : torch.tensor(stored.ToFloats(), stored.Shape);
            }

            var (missing, unexpected) = model.load_state_dict(stateDict, strict: false);
            if (missing.Count > 0 || unexpected.Count > 0)
            {
                throw new ModelFileCorruptException(file.WeightsEntry,
                    $"does not match a {architecture} with {file.ClassCount} classes (missing: {string.Join(", ", missing.Take(5))}; unexpected: {string.Join(", ", unexpected.Take(5))}).");
            }
        }
        catch
        {
            model.Dispose();
            foreach (DfpTensor weight in quantized.Values)
            {
                weight.Dispose();
            }

            throw;
        }
        finally
        {
            foreach (var tensor in stateDict.Values)
            {
                tensor.Dispose();
            }
        }

        var network = new SDfpNetwork(model, file.InputShape, file.Mean, file.Std);
        network.Freeze(quantized, file.ActivationExponents);
        return new SDfpImageClassificationTransformer(env, network, file.Labels, file.Kind, file.VectorShape, file.FeatureColumn, file.ImagePathColumn,
            file.ScoreColumn, file.PredictedLabelColumn, file.EmbeddingColumn, file.ScoringBatchSize);
    }

    // Shapes and exponent names must be what this architecture produces, checked before any tensor is copied into the
    // network (the reader has already checked bit widths, exponents and sizes without TorchSharp).
    private static void CheckWeightsFit(ResNetModel model, ClassifierModelFile file)
    {
        var expected = model.state_dict();
        foreach (StoredTensor stored in file.Tensors)
        {
            if (expected.TryGetValue(stored.Name, out var tensor) && !stored.Shape.SequenceEqual(tensor.shape))
            {
                throw new ModelFileCorruptException(file.WeightsEntry,
                    $"stores '{stored.Name}' with shape [{string.Join(", ", stored.Shape)}], but a {model.Options.Architecture} has [{string.Join(", ", tensor.shape)}].");
            }
        }

        var layers = model.named_modules().Select(m => m.name).ToHashSet(StringComparer.Ordinal);
        foreach (string layer in file.ActivationExponents.Keys)
        {
            if (!layers.Contains(layer))
            {
                throw new ModelFileCorruptException(file.HeaderEntry, $"has an activation exponent for '{layer}', which a {model.Options.Architecture} does not have.");
            }
        }
    }
}
