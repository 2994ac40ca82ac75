"""The ClientApp: a Flower quickstart ClientApp, plus the lines marked ``fedunlearn``
that let it serve every unlearning method (docs/client-contract.md)."""

from __future__ import annotations

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedunlearn import UnlearningContract  # fedunlearn
from quickstart_unlearning.task import Net, evaluate, load_partition, train

app = ClientApp()


def model_and_data(msg: Message, context: Context) -> tuple:
    """The global model sent, this client's partition id and its data."""
    model = Net()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    partition_id = int(context.node_config["partition-id"])
    num_partitions = int(context.node_config["num-partitions"])
    return model, partition_id, *load_partition(partition_id, num_partitions)


@app.train()
def train_handler(msg: Message, context: Context) -> Message:
    model, partition_id, images, labels, record_ids = model_and_data(msg, context)
    epochs = float(context.run_config["local-epochs"])
    honour = bool(context.run_config["unlearning-contract"])
    if honour:  # fedunlearn: a part of the epochs, records left out
        contract = UnlearningContract.read(msg)
        epochs = contract.epochs(epochs)
        keep = contract.keep(record_ids)
        images, labels = images[keep], labels[keep]
    loss = train(model, images, labels, epochs, float(msg.content["config"]["lr"]))
    metrics = {"train_loss": loss, "num-examples": len(labels)}
    if honour:  # fedunlearn: say it was honoured, and which partition this is
        metrics.update(contract.reply(partition_id=partition_id, epochs=epochs))
    content = RecordDict(
        {"arrays": ArrayRecord(model.state_dict()), "metrics": MetricRecord(metrics)}
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate_handler(msg: Message, context: Context) -> Message:
    model, _, images, labels, _ = model_and_data(msg, context)
    loss, accuracy = evaluate(model, images, labels)
    metrics = {"eval_loss": loss, "eval_acc": accuracy, "num-examples": len(labels)}
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
