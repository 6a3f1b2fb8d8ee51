namespace Microsoft.ML.SDfp.Training;

/// <summary>Settings of <see cref="ImageClassifierTrainer"/>. Every default is the value shown on its property.</summary>
/// <remarks>
/// The defaults are the usual CIFAR ResNet recipe (SGD, momentum 0.9, weight decay 5e-4, base rate 0.1 with a
/// cosine decay, crop and flip augmentation), which also trains Fashion-MNIST ResNets well.
/// </remarks>
public sealed record TrainingOptions
{
    /// <summary>Number of passes over the training set. Default 10.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Images per optimizer step. Default 128.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Base (peak) learning rate. Default 0.1.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>Decay after warm-up; computed per step. Default <see cref="LearningRateSchedule.Cosine"/>.</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Cosine;

    /// <summary>
    /// Epochs of linear warm-up from LearningRate/warm-up-steps up to LearningRate, applied per step. Default 0 (no warm-up).
    /// </summary>
    public int WarmupEpochs { get; init; } = 0;

    /// <summary>Epochs between decays for <see cref="LearningRateSchedule.Step"/>. Default 30.</summary>
    public int StepSize { get; init; } = 30;

    /// <summary>Factor of each decay for <see cref="LearningRateSchedule.Step"/>. Default 0.1.</summary>
    public double StepGamma { get; init; } = 0.1;

    /// <summary>SGD momentum (0 = plain SGD). Default 0.9.</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Use Nesterov momentum (needs <see cref="Momentum"/> &gt; 0). Default false.</summary>
    public bool Nesterov { get; init; } = false;

    /// <summary>L2 weight decay added to the gradient by SGD (applied to all parameters, as torchvision's reference recipe). Default 5e-4.</summary>
    public double WeightDecay { get; init; } = 5e-4;

    /// <summary>Random crop augmentation: pad by <see cref="CropPadding"/> zeros, crop back at a random offset per image. Default true.</summary>
    public bool RandomCrop { get; init; } = true;

    /// <summary>Zero padding on every side for <see cref="RandomCrop"/>, in pixels. Default 2 (28×28 images; CIFAR uses 4 for 32×32).</summary>
    public int CropPadding { get; init; } = 2;

    /// <summary>
    /// Value of the padded border for <see cref="RandomCrop"/>, in the units of the (normalised) images. Default 0.
    /// Fashion-MNIST as read by <c>FashionMnist</c> is normalised, so its black background is
    /// -Mean/Std (about -0.81), not 0; pass that to pad with background.
    /// </summary>
    public double CropPaddingValue { get; init; } = 0;

    /// <summary>Mirror each image left-right with probability 1/2. Default true.</summary>
    public bool HorizontalFlip { get; init; } = true;

    /// <summary>
    /// Stop after this many epochs without improvement of <see cref="EarlyStoppingMetric"/> by more than
    /// <see cref="EarlyStoppingMinDelta"/>, and restore the best epoch's weights. Needs a validation set.
    /// Default null (no early stopping).
    /// </summary>
    public int? EarlyStoppingPatience { get; init; } = null;

    /// <summary>Smallest change of the metric that counts as an improvement (accuracy as a fraction, loss in nats). Default 0.</summary>
    public double EarlyStoppingMinDelta { get; init; } = 0;

    /// <summary>Metric for early stopping and <see cref="TrainingResult.BestEpoch"/>. Default <see cref="Training.EarlyStoppingMetric.ValidationAccuracy"/>.</summary>
    public EarlyStoppingMetric EarlyStoppingMetric { get; init; } = EarlyStoppingMetric.ValidationAccuracy;

    /// <summary>
    /// Seed of the shuffle order and augmentation, and of torch's global generator at the start of
    /// <see cref="ImageClassifierTrainer.Fit"/>. Default 1.
    /// </summary>
    public long Seed { get; init; } = 1;

    /// <summary>What a NaN/Inf loss or gradient does. Default <see cref="NonFiniteLossPolicy.Throw"/>.</summary>
    public NonFiniteLossPolicy NonFinitePolicy { get; init; } = NonFiniteLossPolicy.Throw;

    /// <summary>
    /// Copies of the model that train on slices of every batch at the same time, each on its own thread with an equal
    /// share of torch's threads (data parallelism inside the process). The slices' gradients are summed into the
    /// model before its one SGD update, so the step is that of the whole batch, except that batch norm normalises each
    /// slice with the slice's own statistics (as distributed data-parallel training does without synchronised batch
    /// norm); running statistics are averaged over the copies. Default 1 (no copies).
    /// </summary>
    /// <remarks>
    /// Small models on a few CPU cores keep the cores busier this way than with one multi-threaded model: on 2 cores,
    /// ResNet-20 at 28×28 trains faster with 2 replicas of one thread each than with one model of two threads (see the
    /// README for the measured figure). Needs a <see cref="Models.ResNetModel"/>; the result is reproducible for a fixed
    /// replica count, but differs from a run with another count.
    /// </remarks>
    public int Replicas { get; init; } = 1;

    /// <summary>
    /// Data-parallel training across the processes of an Open MPI job (<c>mpirun -np P</c>), or null for one process.
    /// Default null.
    /// </summary>
    /// <remarks>
    /// Each rank passes its own shard of the training set to <see cref="ImageClassifierTrainer.Fit"/> (rank r the rows
    /// i with i mod P = r; <see cref="Data.ImageDataset.Shard"/>). <see cref="BatchSize"/> is the global batch: each rank
    /// takes BatchSize / P images per step. Rank 0's initial weights are copied to every rank, gradients are summed over
    /// the ranks every step (<see cref="DistributedTrainingOptions.GradientExchange"/>), batch-norm running statistics
    /// are averaged every epoch, and validation runs on rank 0 and is shared, so every rank returns the same model.
    /// Batch norm normalises each rank's images with that rank's own batch statistics (as PyTorch's
    /// DistributedDataParallel does without SyncBatchNorm). Ranks that disagree about options or data are refused at
    /// start-up (<see cref="DistributedTrainingException"/>); a rank that fails later ends the whole job with
    /// <c>MPI_Abort</c>, because the others would otherwise wait for it forever.
    /// </remarks>
    public DistributedTrainingOptions? Distributed { get; init; } = null;

    /// <summary>
    /// Training batches over which every batch norm's running mean and variance are re-estimated at the end of each
    /// epoch, before validation ("precise BN"); 0 keeps the exponential running averages collected during the epoch.
    /// Default 0.
    /// </summary>
    /// <remarks>
    /// The running averages mix statistics of weights that have since changed; re-estimating them with the epoch's final
    /// weights is what evaluation, early stopping and the saved model then see. Only the running statistics change: the
    /// training trajectory is the same with or without it. The cost is that many forward passes (no backward).
    /// </remarks>
    public int BatchNormRecalibrationBatches { get; init; } = 0;

    /// <summary>
    /// A folder for a checkpoint written after every epoch, from which a later <see cref="ImageClassifierTrainer.Fit"/>
    /// with the same options, model and data continues; or null for none. Default null.
    /// </summary>
    /// <remarks>
    /// <see cref="ImageClassifierTrainer.Fit"/> looks for the checkpoint when it starts: if there is one, the run goes on
    /// after its last finished epoch (a run that had finished returns at once, with the saved weights); if there is none,
    /// the run starts afresh. The checkpoint is replaced atomically, so a process killed at any moment, even while
    /// writing, leaves the last finished epoch's checkpoint. A resumed run ends with the same weights, bit for bit, as one
    /// that was never interrupted (same machine and thread count). One checkpoint file per folder; a checkpoint of another
    /// run is refused with an error naming the difference. Not available with <see cref="Distributed"/>.
    /// </remarks>
    public string? CheckpointDirectory { get; init; } = null;

    /// <summary>Batch size for the per-epoch validation pass (no gradients, so it can be larger). Default 256.</summary>
    public int EvaluationBatchSize { get; init; } = 256;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid property and its value.</summary>
    public void Validate()
    {
        Require(Epochs >= 1, nameof(Epochs), Epochs, "must be at least 1");
        Require(BatchSize >= 2, nameof(BatchSize), BatchSize, "must be at least 2 (batch norm needs two samples per batch)");
        Require(double.IsFinite(LearningRate) && LearningRate > 0, nameof(LearningRate), LearningRate, "must be a finite number > 0");
        Require(Enum.IsDefined(Schedule), nameof(Schedule), Schedule, "is not a LearningRateSchedule value");
        Require(WarmupEpochs >= 0 && WarmupEpochs <= Epochs, nameof(WarmupEpochs), WarmupEpochs, $"must be in 0..Epochs ({Epochs})");
        Require(StepSize >= 1, nameof(StepSize), StepSize, "must be at least 1");
        Require(double.IsFinite(StepGamma) && StepGamma > 0 && StepGamma <= 1, nameof(StepGamma), StepGamma, "must be in (0, 1]");
        Require(double.IsFinite(Momentum) && Momentum >= 0 && Momentum < 1, nameof(Momentum), Momentum, "must be in [0, 1)");
        Require(!Nesterov || Momentum > 0, nameof(Nesterov), Nesterov, "needs Momentum > 0");
        Require(double.IsFinite(WeightDecay) && WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "must be a finite number >= 0");
        Require(CropPadding >= 0, nameof(CropPadding), CropPadding, "must be >= 0");
        Require(double.IsFinite(CropPaddingValue), nameof(CropPaddingValue), CropPaddingValue, "must be finite");
        Require(EarlyStoppingPatience is null || EarlyStoppingPatience >= 1, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be null or at least 1");
        Require(double.IsFinite(EarlyStoppingMinDelta) && EarlyStoppingMinDelta >= 0, nameof(EarlyStoppingMinDelta), EarlyStoppingMinDelta, "must be a finite number >= 0");
        Require(Enum.IsDefined(EarlyStoppingMetric), nameof(EarlyStoppingMetric), EarlyStoppingMetric, "is not an EarlyStoppingMetric value");
        Require(Enum.IsDefined(NonFinitePolicy), nameof(NonFinitePolicy), NonFinitePolicy, "is not a NonFiniteLossPolicy value");
        Require(Replicas >= 1 && Replicas <= 64, nameof(Replicas), Replicas, "must be in 1..64");
        Distributed?.Validate();
        Require(EvaluationBatchSize >= 1, nameof(EvaluationBatchSize), EvaluationBatchSize, "must be at least 1");
        Require(BatchNormRecalibrationBatches >= 0, nameof(BatchNormRecalibrationBatches), BatchNormRecalibrationBatches, "must be >= 0");
        Require(CheckpointDirectory is null || !string.IsNullOrWhiteSpace(CheckpointDirectory), nameof(CheckpointDirectory), CheckpointDirectory, "must be null or a folder path");
        Require(CheckpointDirectory is null || Distributed is null, nameof(CheckpointDirectory), CheckpointDirectory, "cannot be combined with Distributed training");
    }

    private static void Require(bool ok, string name, object? value, string rule)
    {
        if (!ok)
            throw new ArgumentOutOfRangeException(name, value, $"TrainingOptions.{name} {rule}; got {value ?? "null"}.");
    }
}
