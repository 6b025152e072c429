// DrfSorter: the order in which the allocator visits (role, framework)
// pairs — weighted Dominant Resource Fairness over a tree of hierarchical
// roles (`a`, `a/b`, `a/b/c`), as Mesos's hierarchical allocator sorts.
//
// The tree has one internal node per role path component and, for each role
// that has clients (a framework subscribed to that role), a virtual leaf
// that holds the role's own clients (Mesos calls it the "." child): so a
// role `a` with clients and a subrole `a/b` sorts its own share against
// `a/b`'s at the same level. Siblings are ordered by weighted dominant share
// (the largest fraction of the cluster's total of any scalar resource the
// subtree holds, divided by the weight of that role path; a virtual leaf
// has its role's weight), ties broken by role path. Clients within a leaf
// are ordered by their own (unweighted) dominant share, ties by client id.
//
// The sorter is incremental: Allocated() updates a client's share and every
// node on its path in O(depth * log siblings), so an allocation cycle does
// not re-sort. Everything is ordered containers, so the order is a pure
// function of the inputs.
//
// Thread safety: none; one allocation cycle owns a sorter.
// Invariant: after Finalize(), each node's allocation is the sum of its
// clients' and subroles' allocations plus what was added with
// AddRoleAllocation(), and each sibling set is ordered by current shares.

#ifndef CAIRN_MASTER_INTERNAL_DRF_SORTER_H_
#define CAIRN_MASTER_INTERNAL_DRF_SORTER_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace cairn::master::internal {

// Scalar quantities indexed by resource name index (the allocator interns
// names per cycle).
using ScalarVec = std::vector<double>;

class DrfSorter {
 public:
  // `totals`: the cluster's total of each scalar resource (index = name
  // index); names with a total of 0 do not count toward shares.
  // `weights`: role path -> weight (> 0); missing roles weigh 1.
  DrfSorter(ScalarVec totals, const std::map<std::string, double>& weights);
  DrfSorter(const DrfSorter&) = delete;
  DrfSorter& operator=(const DrfSorter&) = delete;
  ~DrfSorter();

  // Adds a client (a framework's membership in `role`). Returns its index
  // (0, 1, ...). REQUIRES: before Finalize(); (role, id) not added before.
  int AddClient(const std::string& role, const std::string& id);
  // Adds an allocation of a client, or (client -1) of `role` itself without
  // a client (e.g. tasks of a disconnected framework). REQUIRES: before
  // Finalize().
  void AddAllocation(int client, const std::string& role,
                     const ScalarVec& quantities);
  // Computes shares and orders everything. REQUIRES: called once.
  void Finalize();

  // Adds `quantities` to `client` and re-sorts its path.
  // REQUIRES: after Finalize().
  void Allocated(int client, const ScalarVec& quantities);

  // Visits clients in DRF order (depth first, siblings by share). At each
  // role node, `descend(role_path)` may return false to skip the subtree;
  // `visit(client)` returns true to stop. Returns true iff a visit stopped
  // the walk. Nothing may be Allocated() during a walk.
  template <typename Descend, typename Visit>
  bool Walk(const Descend& descend, const Visit& visit) const;

  const std::string& client_role(int client) const;
  const std::string& client_id(int client) const;
  // The client's allocation in its role (for tests and metrics).
  const ScalarVec& client_allocation(int client) const;
  double client_share(int client) const;
  // Weighted dominant share of the role path's subtree (0 if unknown).
  double RoleShare(const std::string& role) const;

 private:
  struct Node;
  struct Client;
  // Sibling order: (share, name), then identity.
  struct Key {
    double share;
    const std::string* name;
    bool operator<(const Key& other) const;
  };
  struct Entry {
    Key key;
    Node* node;  // a child node, or nullptr for a client entry
    int client;  // client index, or -1
    bool operator<(const Entry& other) const { return key < other.key; }
  };

  Node* GetRole(const std::string& path);
  Node* GetLeaf(Node* role);
  double Share(const ScalarVec& allocation, double weight) const;
  void Add(ScalarVec* into, const ScalarVec& quantities) const;
  void Reposition(Node* node);
  template <typename Descend, typename Visit>
  bool WalkNode(const Node& node, const Descend& descend,
                const Visit& visit) const;

  ScalarVec totals_;
  const std::map<std::string, double>& weights_;
  std::unique_ptr<Node> root_;
  std::map<std::string, Node*> roles_;  // role path -> internal node
  std::vector<Client> clients_;
  bool finalized_ = false;
};

// ---- Implementation details ---------------------------------------------

struct DrfSorter::Node {
  std::string path;  // role path ("" for the root)
  std::string name;  // sort name: the path, or path + "/." for a leaf
  bool leaf = false;
  double weight = 1;
  Node* parent = nullptr;
  ScalarVec allocation;
  Key key{0, nullptr};
  // Children (internal node) or clients (leaf), ordered.
  std::set<Entry> entries;
  std::map<std::string, std::unique_ptr<Node>> children;  // owned
  std::unique_ptr<Node> self_leaf;                        // owned
};

struct DrfSorter::Client {
  std::string id;
  Node* leaf = nullptr;
  ScalarVec allocation;
  Key key{0, nullptr};
};

template <typename Descend, typename Visit>
bool DrfSorter::Walk(const Descend& descend, const Visit& visit) const {
  return WalkNode(*root_, descend, visit);
}

template <typename Descend, typename Visit>
bool DrfSorter::WalkNode(const Node& node, const Descend& descend,
                         const Visit& visit) const {
  if (!node.leaf && !node.path.empty() && !descend(node.path)) return false;
  for (const Entry& entry : node.entries) {
    if (entry.node == nullptr) {
      if (visit(entry.client)) return true;
    } else if (WalkNode(*entry.node, descend, visit)) {
      return true;
    }
  }
  return false;
}

}  // namespace cairn::master::internal

#endif  // CAIRN_MASTER_INTERNAL_DRF_SORTER_H_
