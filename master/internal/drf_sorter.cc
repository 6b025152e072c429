#include "master/internal/drf_sorter.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace cairn::master::internal {

bool DrfSorter::Key::operator<(const Key& other) const {
  if (share != other.share) return share < other.share;
  return *name < *other.name;
}

DrfSorter::DrfSorter(ScalarVec totals,
                     const std::map<std::string, double>& weights)
    : totals_(std::move(totals)), weights_(weights) {
  root_ = std::make_unique<Node>();
  root_->allocation.assign(totals_.size(), 0);
}

DrfSorter::~DrfSorter() = default;

DrfSorter::Node* DrfSorter::GetRole(const std::string& path) {
  auto it = roles_.find(path);
  if (it != roles_.end()) return it->second;
  Node* parent = root_.get();
  size_t slash = path.rfind('/');
  if (slash != std::string::npos) parent = GetRole(path.substr(0, slash));
  auto node = std::make_unique<Node>();
  node->path = path;
  node->name = path;
  node->parent = parent;
  auto weight = weights_.find(path);
  if (weight != weights_.end() && weight->second > 0) {
    node->weight = weight->second;
  }
  node->allocation.assign(totals_.size(), 0);
  Node* raw = node.get();
  parent->children[path] = std::move(node);
  roles_[path] = raw;
  return raw;
}

DrfSorter::Node* DrfSorter::GetLeaf(Node* role) {
  if (role->self_leaf == nullptr) {
    auto leaf = std::make_unique<Node>();
    leaf->path = role->path;
    leaf->name = role->path + "/.";
    leaf->leaf = true;
    leaf->weight = role->weight;
    leaf->parent = role;
    leaf->allocation.assign(totals_.size(), 0);
    role->self_leaf = std::move(leaf);
  }
  return role->self_leaf.get();
}

int DrfSorter::AddClient(const std::string& role, const std::string& id) {
  assert(!finalized_);
  Client client;
  client.id = id;
  client.leaf = GetLeaf(GetRole(role));
  client.allocation.assign(totals_.size(), 0);
  clients_.push_back(std::move(client));
  return static_cast<int>(clients_.size()) - 1;
}

void DrfSorter::Add(ScalarVec* into, const ScalarVec& quantities) const {
  for (size_t i = 0; i < quantities.size() && i < into->size(); ++i) {
    (*into)[i] += quantities[i];
  }
}

void DrfSorter::AddAllocation(int client, const std::string& role,
                              const ScalarVec& quantities) {
  assert(!finalized_);
  Node* leaf;
  if (client >= 0) {
    Add(&clients_[client].allocation, quantities);
    leaf = clients_[client].leaf;
  } else {
    leaf = GetLeaf(GetRole(role));
  }
  for (Node* node = leaf; node != nullptr; node = node->parent) {
    Add(&node->allocation, quantities);
  }
}

double DrfSorter::Share(const ScalarVec& allocation, double weight) const {
  double share = 0;
  for (size_t i = 0; i < totals_.size(); ++i) {
    if (totals_[i] > 0) share = std::max(share, allocation[i] / totals_[i]);
  }
  return share / weight;
}

void DrfSorter::Finalize() {
  assert(!finalized_);
  finalized_ = true;
  for (size_t i = 0; i < clients_.size(); ++i) {
    Client& client = clients_[i];
    client.key = Key{Share(client.allocation, 1), &client.id};
    client.leaf->entries.insert(
        Entry{client.key, nullptr, static_cast<int>(i)});
  }
  // Every node, leaves included, enters its parent's set.
  std::vector<Node*> nodes;
  for (const auto& [path, node] : roles_) {
    nodes.push_back(node);
    if (node->self_leaf != nullptr) nodes.push_back(node->self_leaf.get());
  }
  for (Node* node : nodes) {
    node->key = Key{Share(node->allocation, node->weight), &node->name};
    node->parent->entries.insert(Entry{node->key, node, -1});
  }
}

void DrfSorter::Reposition(Node* node) {
  node->parent->entries.erase(Entry{node->key, node, -1});
  node->key.share = Share(node->allocation, node->weight);
  node->parent->entries.insert(Entry{node->key, node, -1});
}

void DrfSorter::Allocated(int client_index, const ScalarVec& quantities) {
  assert(finalized_);
  Client& client = clients_[client_index];
  Node* leaf = client.leaf;
  leaf->entries.erase(Entry{client.key, nullptr, client_index});
  Add(&client.allocation, quantities);
  client.key.share = Share(client.allocation, 1);
  leaf->entries.insert(Entry{client.key, nullptr, client_index});
  for (Node* node = leaf; node->parent != nullptr; node = node->parent) {
    Add(&node->allocation, quantities);
    Reposition(node);
  }
}

const std::string& DrfSorter::client_role(int client) const {
  return clients_[client].leaf->path;
}

const std::string& DrfSorter::client_id(int client) const {
  return clients_[client].id;
}

const ScalarVec& DrfSorter::client_allocation(int client) const {
  return clients_[client].allocation;
}

double DrfSorter::client_share(int client) const {
  return clients_[client].key.share;
}

double DrfSorter::RoleShare(const std::string& role) const {
  auto it = roles_.find(role);
  if (it == roles_.end()) return 0;
  return Share(it->second->allocation, it->second->weight);
}

}  // namespace cairn::master::internal
