using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Training;
using Microsoft.ML.SDfp.Training.Models;
using Microsoft.ML.SDfp.Scoring;

namespace Microsoft.ML.SDfp.Trainers;

public sealed partial class SDfpImageClassificationTrainer
{
    /// <summary>
    /// Settings of <see cref="SDfpImageClassificationTrainer"/>. Every default is stated on its property; the defaults
    /// train a ResNet-20 in S-DFP8 on 32×32 inputs with the usual CIFAR recipe.
    /// </summary>
    public sealed class Options
    {
        /// <summary>Name of the key-typed label column. Default "Label".</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>
        /// Name of the image column: encoded bytes (<c>LoadRawImageBytes</c>, VarVector&lt;byte&gt;), an <c>MLImage</c>
        /// (<c>LoadImages</c>), or a known-size float vector (<c>ExtractPixels</c>, channel-planar CHW). Default "Features".
        /// </summary>
        public string FeatureColumnName { get; set; } = "Features";

        /// <summary>Name of the output column of class probabilities. Default "Score".</summary>
        public string ScoreColumnName { get; set; } = "Score";

        /// <summary>Name of the output key column of the predicted class. Default "PredictedLabel".</summary>
        public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

        /// <summary>
        /// Name of an output column with the penultimate-layer embedding (float vector), for use as features of another
        /// trainer. Default null (no embedding column). See also <see cref="SDfpImageClassificationTransformer.AsFeaturizer"/>.
        /// </summary>
        public string? EmbeddingColumnName { get; set; }

        /// <summary>
        /// Name of a text column holding each image's file path, quoted in errors about undecodable images. Default null:
        /// a text column named "ImagePath" is used when the input has one.
        /// </summary>
        public string? ImagePathColumnName { get; set; }

        /// <summary>Network. Default <see cref="ResNetArchitecture.ResNet20"/> (CIFAR-style, 0.27M parameters).</summary>
        public ResNetArchitecture Architecture { get; set; } = ResNetArchitecture.ResNet20;

        /// <summary>Model input width in pixels; every image is resized to it. Default 32.</summary>
        public int ImageWidth { get; set; } = 32;

        /// <summary>Model input height in pixels; every image is resized to it. Default 32.</summary>
        public int ImageHeight { get; set; } = 32;

        /// <summary>
        /// Model input channels: 1 (grey) or 3 (RGB). Default null: 1 when every training image is grey, otherwise 3.
        /// Grey images fed to a colour model are replicated to 3 channels; colour images fed to a grey model are converted to luma.
        /// </summary>
        public int? ImageChannels { get; set; }

        /// <summary>
        /// Shape (channels, height, width) of a float-vector feature column. Default null: inferred from the vector size
        /// when it is c·s·s for c = 1 or 3. Ignored for byte and MLImage columns.
        /// </summary>
        public (int Channels, int Height, int Width)? FeatureVectorShape { get; set; }

        /// <summary>Number format of the conv/linear layers in the body. Default <see cref="SDfpNumberFormat.SDfp"/>.</summary>
        public SDfpNumberFormat NumberFormat { get; set; } = SDfpNumberFormat.SDfp;

        /// <summary>Bits per integer for weights, activations and errors (2..16). Default 8.</summary>
        public int Bits { get; set; } = 8;

        /// <summary>S-DFP shift of the weights (used for <see cref="SDfpNumberFormat.SDfp"/>). Default 0.</summary>
        public int WeightShift { get; set; } = 0;

        /// <summary>S-DFP shift of the activations (used for <see cref="SDfpNumberFormat.SDfp"/>). Default 1.</summary>
        public int ActivationShift { get; set; } = 1;

        /// <summary>
        /// S-DFP shift of the errors (used for <see cref="SDfpNumberFormat.SDfp"/>). Default 1: on Fashion-MNIST the
        /// shift probe of the experiment (docs/results) found that 1 is the largest shift that saturates at most 0.1 % of
        /// the errors, while 2 saturates about 3 %, and it is the largest errors that saturate.
        /// </summary>
        public int ErrorShift { get; set; } = 1;

        /// <summary>Rounding of weights and activations. Default <see cref="RoundingMode.NearestEven"/>.</summary>
        public RoundingMode Rounding { get; set; } = RoundingMode.NearestEven;

        /// <summary>Rounding of errors (gradients). Default <see cref="RoundingMode.NearestEven"/>.</summary>
        public RoundingMode ErrorRounding { get; set; } = RoundingMode.NearestEven;

        /// <summary>Quantise the stem convolution too. Default false (kept FP32, as is usual for low-precision ResNets).</summary>
        public bool QuantizeFirstConv { get; set; }

        /// <summary>Quantise the classifier too. Default false (kept FP32).</summary>
        public bool QuantizeLastLinear { get; set; }

        /// <summary>Passes over the training set. Default 10.</summary>
        public int Epochs { get; set; } = 10;

        /// <summary>Images per optimizer step. Default 128.</summary>
        public int BatchSize { get; set; } = 128;

        /// <summary>Peak learning rate. Default 0.1.</summary>
        public double LearningRate { get; set; } = 0.1;

        /// <summary>Learning-rate decay. Default <see cref="LearningRateSchedule.Cosine"/>.</summary>
        public LearningRateSchedule Schedule { get; set; } = LearningRateSchedule.Cosine;

        /// <summary>Epochs of linear warm-up. Default 0.</summary>
        public int WarmupEpochs { get; set; }

        /// <summary>SGD momentum. Default 0.9.</summary>
        public double Momentum { get; set; } = 0.9;

        /// <summary>L2 weight decay. Default 5e-4.</summary>
        public double WeightDecay { get; set; } = 5e-4;

        /// <summary>Random-crop augmentation (pad then crop back). Default true.</summary>
        public bool RandomCrop { get; set; } = true;

        /// <summary>Padding of the random crop, in pixels. Default 2.</summary>
        public int CropPadding { get; set; } = 2;

        /// <summary>Random left-right flips. Default true.</summary>
        public bool HorizontalFlip { get; set; } = true;

        /// <summary>
        /// Validation data (same schema as the training data). Default null: <see cref="ValidationSetFraction"/> of the
        /// training rows are held out instead.
        /// </summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>
        /// Fraction of the training rows held out for validation when <see cref="ValidationSet"/> is null (0 = none; the
        /// held-out rows are a seeded random sample). Default 0.1.
        /// </summary>
        public double ValidationSetFraction { get; set; } = 0.1;

        /// <summary>Stop after this many epochs without improvement and keep the best epoch. Default null (never).</summary>
        public int? EarlyStoppingPatience { get; set; }

        /// <summary>Smallest change that counts as an improvement. Default 0.</summary>
        public double EarlyStoppingMinDelta { get; set; }

        /// <summary>Metric watched by early stopping. Default <see cref="Training.EarlyStoppingMetric.ValidationAccuracy"/>.</summary>
        public EarlyStoppingMetric EarlyStoppingMetric { get; set; } = EarlyStoppingMetric.ValidationAccuracy;

        /// <summary>Called after every epoch with its metrics (on the training thread). Default null.</summary>
        public Action<EpochMetrics>? MetricsCallback { get; set; }

        /// <summary>
        /// When set, quantisation telemetry (exponent, saturation, SQNR per layer and role) is written here as CSV at the
        /// end of training (atomically). Default null (telemetry kept in memory only for the callback).
        /// </summary>
        public string? TelemetryOutputPath { get; set; }

        /// <summary>
        /// Seed of weight initialisation, shuffling, augmentation and the validation split. Default null: the MLContext's
        /// seed when it has one, else 1.
        /// </summary>
        public int? Seed { get; set; }

        /// <summary>
        /// Stops training between steps (with <see cref="OperationCanceledException"/>) when cancelled. Training also stops
        /// when the MLContext's execution is cancelled (ML.NET 5.0.1 keeps <c>MLContext.CancelExecution</c> internal; AutoML
        /// and other ML.NET components call it). Default none.
        /// </summary>
        public CancellationToken CancellationToken { get; set; }

        /// <summary>
        /// Copies of the network that train on slices of every batch at the same time, each on its own thread with an equal
        /// share of torch's threads; their gradients are summed before the one SGD update (batch norm normalises each
        /// slice on its own). On a few CPU cores a small network keeps the cores busier this way. Default 1.
        /// </summary>
        public int Replicas { get; set; } = 1;

        /// <summary>
        /// Data-parallel training across the processes of an Open MPI job (<c>mpirun -np P</c>), or null for one process.
        /// Each rank decodes only its rows (i mod P = rank) of the training data; <see cref="BatchSize"/> is the global
        /// batch. Rank 0's channel statistics, initial weights and calibration images are used by every rank, gradients
        /// are summed over the ranks every step (FP32 or S-DFP, <see cref="DistributedTrainingOptions.GradientExchange"/>),
        /// validation runs on rank 0, and only rank 0 logs. Every rank returns the same model; save it on rank 0. Every
        /// rank must run with the same options and data, or training is refused at start-up. Default null.
        /// </summary>
        public DistributedTrainingOptions? Distributed { get; set; }

        /// <summary>
        /// Training batches over which batch norm's running statistics are re-estimated with the final weights of each
        /// epoch ("precise BN"), so that validation, early stopping and the saved model see statistics of the weights
        /// they evaluate; 0 keeps the exponential running averages. Only the statistics change, not the training.
        /// Default 50.
        /// </summary>
        /// <remarks>
        /// The running averages mix statistics of weights that have since moved; with 8-bit formats the validation
        /// accuracy measured with them can collapse in the middle of training while the weights are fine, and early
        /// stopping would then select on that collapse. Each batch costs a training forward pass; the README has the
        /// measurements behind the default.
        /// </remarks>
        public int BatchNormRecalibrationBatches { get; set; } = 50;

        /// <summary>
        /// A folder for a checkpoint written atomically after every epoch, or null for none. A <c>Fit</c> with the same
        /// options and data that finds the checkpoint continues after its last finished epoch and ends with the same model,
        /// bit for bit, as an uninterrupted run; a checkpoint of another run is refused, naming the difference. Not
        /// available with <see cref="Distributed"/>. Default null.
        /// </summary>
        public string? CheckpointDirectory { get; set; }

        /// <summary>
        /// Skip training and validation images that cannot be decoded (empty, not an image, or truncated) instead of
        /// failing with an <see cref="ImageInput.ImageDecodeException"/> naming the file; the log then says how many were skipped
        /// and names the first few. Scoring never skips: see <c>mlContext.Data.SkipUndecodableImages</c>. Default false.
        /// </summary>
        public bool SkipUndecodableImages { get; set; }

        /// <summary>Rows per forward pass when scoring an IDataView. Default 64.</summary>
        public int ScoringBatchSize { get; set; } = 64;

        /// <summary>Test hook: keep the FP32 master weights after training, to compare the .zip size with FP32 storage.</summary>
        internal bool KeepMasterWeights { get; set; }

        /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option and its value.</summary>
        public void Validate()
        {
            Require(!string.IsNullOrWhiteSpace(LabelColumnName), nameof(LabelColumnName), LabelColumnName, "must be a column name");
            Require(!string.IsNullOrWhiteSpace(FeatureColumnName), nameof(FeatureColumnName), FeatureColumnName, "must be a column name");
            Require(!string.IsNullOrWhiteSpace(ScoreColumnName), nameof(ScoreColumnName), ScoreColumnName, "must be a column name");
            Require(!string.IsNullOrWhiteSpace(PredictedLabelColumnName), nameof(PredictedLabelColumnName), PredictedLabelColumnName, "must be a column name");
            Require(Enum.IsDefined(Architecture), nameof(Architecture), Architecture, "is not a ResNetArchitecture value");
            Require(ImageWidth is >= 8 and <= 1024, nameof(ImageWidth), ImageWidth, "must be in 8..1024");
            Require(ImageHeight is >= 8 and <= 1024, nameof(ImageHeight), ImageHeight, "must be in 8..1024");
            Require(ImageChannels is null or 1 or 3, nameof(ImageChannels), ImageChannels, "must be null, 1 or 3");
            Require(FeatureVectorShape is null || (FeatureVectorShape.Value.Channels is 1 or 3 && FeatureVectorShape.Value.Height > 0 && FeatureVectorShape.Value.Width > 0),
                nameof(FeatureVectorShape), FeatureVectorShape, "must have 1 or 3 channels and positive height and width");
            Require(Enum.IsDefined(NumberFormat), nameof(NumberFormat), NumberFormat, "is not an SDfpNumberFormat value");
            Require(Bits is >= 2 and <= 16, nameof(Bits), Bits, "must be in 2..16");
            Require(ValidationSetFraction is >= 0 and < 1, nameof(ValidationSetFraction), ValidationSetFraction, "must be in [0, 1)");
            Require(ScoringBatchSize >= 1, nameof(ScoringBatchSize), ScoringBatchSize, "must be at least 1");
            foreach (var (name, shift) in new[] { (nameof(WeightShift), WeightShift), (nameof(ActivationShift), ActivationShift), (nameof(ErrorShift), ErrorShift) })
            {
                Require(Math.Abs(shift) <= DfpFormat.MaxShiftMagnitude, name, shift, $"must be in [-{DfpFormat.MaxShiftMagnitude}, {DfpFormat.MaxShiftMagnitude}]");
            }

            try
            {
                ToTrainingOptions(1).Validate();
                ToQuantizationPolicy().Validate();
            }
            catch (ArgumentOutOfRangeException ex)
            {
                // The training loop's own option types name themselves; users set these Options.
                string text = ex.Message.Split('\n')[0];
                int parameter = text.IndexOf(" (Parameter '", StringComparison.Ordinal);
                text = (parameter > 0 ? text[..parameter] : text).Replace("TrainingOptions.", "SDfpImageClassificationTrainer.Options.", StringComparison.Ordinal);
                throw new ArgumentOutOfRangeException(ex.ParamName?.Split('.')[^1], ex.ActualValue, text);
            }
        }

        internal QuantizationPolicy ToQuantizationPolicy()
        {
            if (NumberFormat == SDfpNumberFormat.Fp32)
            {
                return QuantizationPolicy.Fp32;
            }

            DfpFormat Make(int shift, RoundingMode rounding) => (NumberFormat switch
            {
                SDfpNumberFormat.Dfp => DfpFormat.Dfp(Bits),
                SDfpNumberFormat.SDfp => DfpFormat.SDfp(Bits, shift),
                _ => DfpFormat.Auto(Bits),
            }) with { Rounding = rounding };

            var config = new QuantizationConfig
            {
                Weight = Make(WeightShift, Rounding),
                Activation = Make(ActivationShift, Rounding),
                Error = Make(ErrorShift, ErrorRounding),
            };
            return QuantizationPolicy.Body(config) with { QuantizeFirstConv = QuantizeFirstConv, QuantizeLastLinear = QuantizeLastLinear };
        }

        internal TrainingOptions ToTrainingOptions(long seed) => new()
        {
            Epochs = Epochs,
            BatchSize = BatchSize,
            LearningRate = LearningRate,
            Schedule = Schedule,
            WarmupEpochs = WarmupEpochs,
            Momentum = Momentum,
            WeightDecay = WeightDecay,
            RandomCrop = RandomCrop,
            CropPadding = CropPadding,
            HorizontalFlip = HorizontalFlip,
            EarlyStoppingPatience = EarlyStoppingPatience,
            EarlyStoppingMinDelta = EarlyStoppingMinDelta,
            EarlyStoppingMetric = EarlyStoppingMetric,
            Seed = seed,
            Replicas = Replicas,
            CheckpointDirectory = CheckpointDirectory,
            BatchNormRecalibrationBatches = BatchNormRecalibrationBatches,
            Distributed = Distributed,
        };

        private static void Require(bool ok, string name, object? value, string rule)
        {
            if (!ok)
            {
                throw new ArgumentOutOfRangeException(name, value, $"SDfpImageClassificationTrainer.Options.{name} {rule}; got {value ?? "null"}.");
            }
        }
    }
}
